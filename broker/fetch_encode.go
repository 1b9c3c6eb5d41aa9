package broker

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A Fetch response is mostly its record batches: megabytes of the log,
// which kmsg's encoder would copy into one big buffer beside the few bytes
// around them. encodeFetch writes those few bytes only, and leaves the
// batches in the log's segment files: the response goes out as a list of
// pieces, the framing between them and, in turn, each partition's range
// of a segment file (a log.Slice), which the connection's writer hands to
// the kernel to send from the file (sendfile, as Kafka's FileRecords
// does): the record bytes never enter the broker's memory.
//
// The layout, by version (Kafka's FetchResponse.json), v12+ being flexible
// (compact lengths as uvarints of length+1, tagged fields after every
// struct):
//
//	throttle_time_ms int32, error_code int16 (v7+), session_id int32 (v7+),
//	responses [ topic string (v0-12) | topic_id uuid (v13+),
//	  partitions [ partition int32, error_code int16, high_watermark int64,
//	    last_stable_offset int64 (v4+), log_start_offset int64 (v5+),
//	    aborted_transactions nullable [producer_id int64, first_offset int64] (v4+),
//	    preferred_read_replica int32 (v11+), records nullable bytes,
//	    tags: current_leader (1) ] ],
//	tags: node_endpoints (0, v16+)
//
// The tags klab never sets (diverging_epoch, snapshot_id) are not written.

// encodeFetch encodes a Fetch response as a frame — size, correlation id,
// header tags for flexible versions, body — in pieces: framing, then a
// partition's record batches, then framing again, and so on. A partition's
// batches are its range of the log in r.records, or else its own
// RecordBatches (not copied).
func encodeFetch(r *request, resp *kmsg.FetchResponse) []piece {
	v := r.version
	flexible := v >= 12
	e := fetchEncoder{flexible: flexible, buf: make([]byte, 8, 256), records: r.records}
	binary.BigEndian.PutUint32(e.buf[4:], uint32(r.correlation))
	if flexible {
		e.uvarint(0) // response header v1: no tags
	}
	e.int32(resp.ThrottleMillis)
	if v >= 7 {
		e.int16(resp.ErrorCode)
		e.int32(resp.SessionID)
	}
	e.arrayLen(len(resp.Topics))
	for _, t := range resp.Topics {
		if v >= 13 {
			e.buf = append(e.buf, t.TopicID[:]...)
		} else {
			e.string(t.Topic)
		}
		e.arrayLen(len(t.Partitions))
		for i := range t.Partitions {
			e.partition(v, t.Topic, t.TopicID, &t.Partitions[i])
		}
		if flexible {
			e.uvarint(0)
		}
	}
	if flexible {
		if v >= 16 && len(resp.Brokers) > 0 {
			var body fetchEncoder
			body.flexible = true
			body.arrayLen(len(resp.Brokers))
			for _, br := range resp.Brokers {
				body.int32(br.NodeID)
				body.string(br.Host)
				body.int32(br.Port)
				body.nullableString(br.Rack)
				body.uvarint(0)
			}
			e.uvarint(1) // one tag
			e.uvarint(0) // node_endpoints
			e.uvarint(uint64(len(body.buf)))
			e.buf = append(e.buf, body.buf...)
		} else {
			e.uvarint(0)
		}
	}
	e.cut()
	size := -4
	for _, p := range e.pieces {
		size += p.len()
	}
	binary.BigEndian.PutUint32(e.pieces[0].bytes, uint32(size))
	return e.pieces
}

// partition encodes one partition's answer; its record batches become a
// piece of their own.
func (e *fetchEncoder) partition(v int16, topic string, id [16]byte, p *kmsg.FetchResponseTopicPartition) {
	e.int32(p.Partition)
	e.int16(p.ErrorCode)
	e.int64(p.HighWatermark)
	if v >= 4 {
		e.int64(p.LastStableOffset)
	}
	if v >= 5 {
		e.int64(p.LogStartOffset)
	}
	if v >= 4 {
		if p.AbortedTransactions == nil {
			e.nullArray()
		} else {
			e.arrayLen(len(p.AbortedTransactions))
			for _, a := range p.AbortedTransactions {
				e.int64(a.ProducerID)
				e.int64(a.FirstOffset)
				if e.flexible {
					e.uvarint(0)
				}
			}
		}
	}
	if v >= 11 {
		e.int32(p.PreferredReadReplica)
	}
	records := piece{bytes: p.RecordBatches}
	if s := e.records.of(topic, id, p.Partition); s.Len() > 0 {
		records = piece{records: s}
	}
	switch {
	case records.bytes == nil && records.len() == 0 && e.flexible:
		e.uvarint(0)
	case records.bytes == nil && records.len() == 0:
		e.int32(-1)
	case e.flexible:
		e.uvarint(uint64(records.len()) + 1)
	default:
		e.int32(int32(records.len()))
	}
	if records.len() > 0 {
		e.cut()
		e.pieces = append(e.pieces, records)
	}
	if e.flexible {
		if p.CurrentLeader.LeaderID >= 0 || p.CurrentLeader.LeaderEpoch >= 0 {
			e.uvarint(1) // one tag
			e.uvarint(1) // current_leader
			e.uvarint(9) // leader_id, leader_epoch, no tags
			e.int32(p.CurrentLeader.LeaderID)
			e.int32(p.CurrentLeader.LeaderEpoch)
			e.uvarint(0)
		} else {
			e.uvarint(0)
		}
	}
}

// fetchEncoder appends the framing of a Fetch response to buf; cut ends a
// piece there, so that record batches can follow as pieces of their own.
type fetchEncoder struct {
	flexible bool
	buf      []byte
	pieces   []piece
	records  fetchedRecords
}

func (e *fetchEncoder) cut() {
	if len(e.buf) > 0 {
		e.pieces = append(e.pieces, piece{bytes: e.buf})
		e.buf = make([]byte, 0, 128)
	}
}

func (e *fetchEncoder) int16(n int16) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(n)) }
func (e *fetchEncoder) int32(n int32) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n)) }
func (e *fetchEncoder) int64(n int64) { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(n)) }
func (e *fetchEncoder) uvarint(n uint64) {
	e.buf = binary.AppendUvarint(e.buf, n)
}

// arrayLen is an array's length: int32, or uvarint length+1 when flexible.
func (e *fetchEncoder) arrayLen(n int) {
	if e.flexible {
		e.uvarint(uint64(n) + 1)
	} else {
		e.int32(int32(n))
	}
}

func (e *fetchEncoder) nullArray() {
	if e.flexible {
		e.uvarint(0)
	} else {
		e.int32(-1)
	}
}

func (e *fetchEncoder) string(s string) {
	if e.flexible {
		e.uvarint(uint64(len(s)) + 1)
	} else {
		e.int16(int16(len(s)))
	}
	e.buf = append(e.buf, s...)
}

func (e *fetchEncoder) nullableString(s *string) {
	if s == nil {
		if e.flexible {
			e.uvarint(0)
		} else {
			e.int16(-1)
		}
		return
	}
	e.string(*s)
}
