// Package broker is a Kafka broker: it keeps topics and partitions, each
// partition a commit log (package broker/log), and serves them over
// Kafka's wire protocol, so that any Kafka client can create topics,
// produce and consume.
//
// The wire server reads size-prefixed requests, one goroutine reading and
// one writing per connection, and answers in request order. Each API has a
// file of its own named by its key, as franz-go's kfake names them
// (00_produce.go, 01_fetch.go, 18_api_versions.go, ...); each registers the
// versions it implements beside its handler, and ApiVersions advertises
// exactly those. Requests and responses are encoded and decoded with
// github.com/twmb/franz-go/pkg/kmsg. Lesson 03, "Speaking Kafka", is built
// from this package.
package broker
