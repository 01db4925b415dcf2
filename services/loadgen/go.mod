module github.com/eventedge/eventedge/services/loadgen

go 1.26.8

replace github.com/eventedge/eventedge/proto => ../../proto

replace github.com/eventedge/eventedge/services/edge => ../edge

replace github.com/eventedge/eventedge/services/internal => ../internal

require (
	github.com/coder/websocket v1.8.15
	github.com/eventedge/eventedge/proto v0.0.0
	github.com/eventedge/eventedge/services/edge v0.0.0-00010101000000-000000000000
	github.com/eventedge/eventedge/services/internal v0.0.0
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/nats-io/nats.go v1.55.0
	go.uber.org/goleak v1.3.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nats-server/v2 v2.15.2 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/oklog/ulid/v2 v2.1.2 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
