// Package docker holds no code: it is the module of eventedge's container
// files and their tests.
//
//   - Dockerfile and build-images package the static binaries of ./bin into
//     one FROM-scratch image per service (`make images`);
//   - healthcheck is the static HEALTHCHECK program copied into every image;
//   - image_test.go builds the images and runs them read-only, as a
//     non-root user, on loopback ports of a Docker engine with host
//     networking (skipped without an engine);
//   - compose_test.go validates the repository's docker-compose.yml
//     statically: `docker-compose config` when the binary is there, and our
//     own rules always.
package docker
