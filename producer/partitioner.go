package producer

import (
	"encoding/binary"
	"math/rand/v2"
)

// murmur2 is the 32-bit MurmurHash2 of data with the seed the Java client
// uses (org.apache.kafka.common.utils.Utils.murmur2). A key must hash to the
// same partition whichever client produced it, or a keyed topic loses its
// per-key order the day a second language writes to it.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(data))
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// keyPartition is the Java client's default partition for a key: the
// murmur2 hash made positive by clearing its sign bit (not by Math.abs,
// which leaves MinInt32 negative), modulo the partition count.
func keyPartition(key []byte, partitions int) (int32, error) {
	//klab:lesson 04 begin keyPartition
	positive := murmur2(key) & 0x7fffffff
	return positive % int32(partitions), nil
	//klab:lesson 04 stub
	// return 0, lessons.Todo("04", "keyPartition")
	//klab:lesson 04 end
}

// sticky is the sticky partitioner of KIP-480 for records without a key:
// rather than spreading them one by one over the partitions, which makes
// many small batches, it sends them all to one partition until that
// partition's batch is full, then picks another. Batches fill, requests
// shrink, latency drops.
type sticky struct {
	current map[string]int32 // topic -> partition it sticks to
}

// partition returns the partition a keyless record of topic goes to.
func (s *sticky) partition(topic string, partitions int) int32 {
	p, ok := s.current[topic]
	if !ok || int(p) >= partitions {
		p = int32(rand.IntN(partitions))
		s.current[topic] = p
	}
	return p
}

// next moves topic to another partition, once its batch there is full.
func (s *sticky) next(topic string, partitions int) {
	if partitions < 2 {
		return
	}
	old := s.current[topic]
	p := int32(rand.IntN(partitions - 1))
	if p >= old {
		p++ // any partition but the old one
	}
	s.current[topic] = p
}
