// Package api is the task API's HTTP surface: the REST/JSON endpoints of
// /v1/projects/{projectId}/tasks, runs and cancellations, project
// membership revocation, and the OpenAPI document at /openapi.json.
//
// Bodies are the protojson form of eventedge.v1.Task (lowerCamelCase;
// status as TASK_STATUS_* names; zero values omitted); unknown fields,
// read-only fields and invalid values are refused with 400 and a body
// naming the field: {"error":{"code":"bad_request","field":"title",
// "message":"…"}}. Bodies are limited (64 KiB by default).
//
// Every request but /openapi.json needs a bearer JWT: tasks:read and
// membership of the project to read, tasks:write and membership to change,
// admin to revoke a member. Writes go through taskstore, which publishes
// the matching events; ETag is the task's revision and If-Match makes PATCH
// and DELETE conditional (409 on a stale revision).
//
// An API value is immutable after New and safe for concurrent use; it
// starts no goroutines.
package api
