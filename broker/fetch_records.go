package broker

import (
	"klab.dev/klab/broker/log"
)

// fetchedRecords are the record batches of a Fetch response, by partition,
// as ranges of the segment files that hold them (log.Slice): the response
// names them, and the connection's writer sends them from the files
// (sendfile.go), so that they are never read into the broker's memory. A
// read thrown away (a Fetch that waits reads again) is closed. A response
// names each partition once (fetchOnce).
type fetchedRecords map[topicPartition]log.Slice

// topicPartition names a partition by its topic's name, and its id for a
// Fetch that names topics by id (v13+; a topic of an unknown id has no
// name).
type topicPartition struct {
	topic     string
	id        [16]byte
	partition int32
}

// add keeps a partition's records, or closes an empty range at once.
func (f fetchedRecords) add(k topicPartition, s log.Slice) {
	if s.Len() == 0 {
		s.Close()
		return
	}
	f[k].Close() // none: a response names a partition once
	f[k] = s
}

// of is a partition's records, the zero Slice for none.
func (f fetchedRecords) of(topic string, id [16]byte, partition int32) log.Slice {
	return f[topicPartition{topic, id, partition}]
}

// close lets go of every file.
func (f fetchedRecords) close() {
	for _, s := range f {
		s.Close()
	}
}
