// Package docker holds no code: it is the module of eventedge's container
// files and their tests.
//
//   - Dockerfile and build-images package the static binaries of ./bin into
//     one FROM-scratch image per service (`make images`), and bin/nats-server
//     into eventedge/nats-server for the container tests (the official NATS
//     image cannot be pulled where they run);
//   - healthcheck is the static HEALTHCHECK program copied into every image;
//   - image_test.go builds the images and runs them read-only, as a
//     non-root user, on loopback ports of a Docker engine with host
//     networking (skipped without an engine);
//   - containers_test.go drives the edge and NATS images with
//     testcontainers-go: non-root on a read-only root filesystem, the edge's
//     drain on `docker stop` (close 1012, exit 0), and no event lost,
//     duplicated or reordered across a NATS container restart. It talks to
//     loopback only — never to the gateway testcontainers would pick inside a
//     container — and checks so in /proc (skipped without an engine);
//   - compose_test.go validates the repository's docker-compose.yml
//     statically: `docker-compose config` when the binary is there, and our
//     own rules always.
package docker
