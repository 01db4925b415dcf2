// Package deploy holds no code: its tests validate the deployment files
// beside it, offline, on every `make test`.
//
//   - k8s/: the kustomize base and the dev and prod overlays render with the
//     kustomize API, every object decodes strictly into its Go type
//     (unknown fields and wrong types fail), and the objects follow our
//     rules (probes, resources, security context, selectors that select,
//     the edge's grace period, a single sysmon);
//   - prometheus/alerts.yml: parses with Prometheus' rule parser, links
//     every alert to a section of docs/operations.md, and equals the
//     PrometheusRule of k8s/base/monitoring;
//   - grafana/ and the alerts use only metric names the services export.
//
// k8s/base/monitoring/prometheusrule.yaml is generated from
// prometheus/alerts.yml: `go test -run TestPrometheusRule -update`.
package deploy
