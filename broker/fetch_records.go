package broker

import (
	"klab.dev/klab/broker/log"
)

// fetchedRecords are the record batches of a Fetch response, by partition,
// as ranges of the segment files that hold them (log.Slice): the response
// names them, and the connection's writer sends them from the files
// (sendfile.go), so that they are never read into the broker's memory. A
// read thrown away (a Fetch that waits reads again) is closed.
type fetchedRecords map[topicPartition]log.Slice

// topicPartition names a partition by its topic's name.
type topicPartition struct {
	topic     string
	partition int32
}

// add keeps a partition's records, or closes an empty range at once.
func (f fetchedRecords) add(topic string, partition int32, s log.Slice) {
	if s.Len() == 0 {
		s.Close()
		return
	}
	f[topicPartition{topic, partition}] = s
}

// of is a partition's records, the zero Slice for none.
func (f fetchedRecords) of(topic string, partition int32) log.Slice {
	return f[topicPartition{topic, partition}]
}

// close lets go of every file.
func (f fetchedRecords) close() {
	for _, s := range f {
		s.Close()
	}
}
