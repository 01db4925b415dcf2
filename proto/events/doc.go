// Package events is the Go side of the eventedge event contract: it builds
// events with sane defaults, validates them, encodes and decodes them as
// protobuf or protojson, publishes them to JetStream, and creates the EVENTS
// stream they are stored in.
//
// Every publisher uses it, and so does the edge when it reads events back, so
// that "valid" means the same thing on both sides of NATS.
//
// Typical use:
//
//	js, _ := jetstream.New(nc)
//	if _, err := events.EnsureStreams(ctx, js, events.StreamConfig{}); err != nil { … }
//	ev := events.TaskUpdated(room.Project("p1"), "u7", "t1", &eventedgev1.Task{Title: "new"}, "title")
//	ack, err := events.Publish(ctx, js, ev) // validates, Nats-Msg-Id = ev.Id, waits for the ack
//
// Publish is safe to retry with the same *Event: its id is kept, so
// JetStream's duplicate window drops the second copy.
package events
