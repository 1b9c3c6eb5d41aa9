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
//
// The producer is idempotent by default, as Kafka's Java producer is since
// 3.0 (enable.idempotence=true, KIP-679). Before its first batch it gets a
// producer id and epoch from any broker (InitProducerId), and it numbers
// the records it sends to each partition: each batch carries the id, the
// epoch and its first record's sequence number. The partition's leader
// writes a batch only if it continues the sequence, and answers a retry of
// a batch it already has with that batch's offsets, writing nothing: a
// retry after a lost answer writes no duplicate, and with up to 5 requests
// in flight a partition's records stay in the order they were sent. A
// retried batch keeps its numbers; after a failure, a partition's batches
// go again in sequence order, one at a time. When the producer's sequences
// and a broker's can no longer agree, it bumps its epoch (KIP-360; at the
// last epoch, it gets a new producer id) and numbers its unacknowledged
// batches again from 0. Idempotence needs acks=all,
// retries above 0 and max.in.flight.requests.per.connection at most 5: a
// conflicting setting turns the default off (Producer.Idempotent says
// why), and is an error if enable.idempotence=true was set explicitly.
// Lesson 09, "The idempotent producer", numbers the batches.
package producer
