// Package producer is the course's own Kafka producer, built on the wire
// protocol (package broker/client) and not on another client: it works
// against klab and against any Kafka cluster.
//
// A record goes through the partitioner (murmur2 of the key, as the Java
// client hashes it, or the sticky partitioner for records without a key),
// into the record accumulator, which gathers records into one batch per
// partition until batch.size is reached or linger.ms has passed. A sender
// goroutine drains ready batches, one per partition per request, into
// Produce requests to each partition's leader, keeps up to
// max.in.flight.requests.per.connection requests in flight per broker, and
// retries what failed for a reason that may pass (a leader moved) until
// delivery.timeout.ms. Send waits for the answer; SendAsync returns at once
// with a Future, and calls a callback if given one. Lesson 04, "The
// producer", is built from this package.
package producer
