// Package consumer is the course's own Kafka consumer, built on the wire
// protocol (package broker/client): it works against klab and against any
// Kafka cluster.
//
// The application assigns itself partitions (Assign; consumer groups, which
// assign partitions for you, come in lesson 10), and calls Poll in a loop.
// For each partition the consumer keeps a position: the offset of the next
// record Poll will return. A position it does not know yet, or one that has
// fallen out of the log (OFFSET_OUT_OF_RANGE), is reset by
// auto.offset.reset: earliest, latest, or none (an error). Fetches go to
// each partition's leader, one request per broker for all its partitions,
// and wait on the broker for fetch.min.bytes up to fetch.max.wait.ms. While
// the application works through what one Poll returned, the next fetch is
// already on its way. Lesson 05, "The consumer", is built from this
// package.
package consumer
