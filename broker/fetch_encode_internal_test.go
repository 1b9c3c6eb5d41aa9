package broker

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEncodeFetchIsKmsgsEncoding: the vectored Fetch encoding, pieces
// joined, is byte for byte what kmsg encodes, at every version the broker
// speaks, for answers with and without records, errors, aborted
// transactions, a preferred read replica and KIP-951's hints; records
// given as a range of a log file are a piece of their own, and records
// given as bytes are the response's own slices, not copies.
func TestEncodeFetchIsKmsgsEncoding(t *testing.T) {
	l := logOf(t, 3, 90)
	batches, err := l.Read(0, 1<<20)
	require.NoError(t, err)
	rack := "eu-1"
	build := func(version int16) *kmsg.FetchResponse {
		resp := kmsg.NewPtrFetchResponse()
		resp.ThrottleMillis, resp.ErrorCode, resp.SessionID = 5, 0, 42
		for ti, name := range []string{"orders", "payments"} {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = name, [16]byte{byte(ti + 1), 9}
			for pi := range 4 {
				p := kmsg.NewFetchResponseTopicPartition()
				p.Partition, p.HighWatermark, p.LastStableOffset, p.LogStartOffset = int32(pi), 100, 99, 3
				switch pi {
				case 0:
					p.RecordBatches = batches
				case 1:
					p.RecordBatches = []byte{}
					p.PreferredReadReplica = 2
				case 2:
					p.ErrorCode = 6 // NOT_LEADER_OR_FOLLOWER
					if version >= 16 {
						p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 3, 8
					}
				case 3:
					p.RecordBatches = batches[:61]
					p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 9, FirstOffset: 10}}
				}
				rt.Partitions = append(rt.Partitions, p)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		if version >= 16 {
			br := kmsg.NewFetchResponseBroker()
			br.NodeID, br.Host, br.Port, br.Rack = 3, "127.0.0.1", 9095, &rack
			resp.Brokers = append(resp.Brokers, br)
		}
		return resp
	}
	for version := int16(4); version <= 16; version++ {
		r := &request{key: kmsg.Fetch, version: version, correlation: 77}
		want := encodeResponse(r, build(version))
		// orders-0's records come from the log, as handleFetch gives them.
		resp := build(version)
		resp.Topics[0].Partitions[0].RecordBatches = []byte{}
		s, err := l.Slice(0, 1<<20)
		require.NoError(t, err)
		r.records = fetchedRecords{}
		r.records.add(topicPartition{"orders", resp.Topics[0].TopicID, 0}, s)
		pieces := encodeFetch(r, resp)
		var got []byte
		shared, fromFile := false, false
		for _, p := range pieces {
			if p.bytes == nil {
				b, err := p.records.Bytes()
				require.NoError(t, err)
				got = append(got, b...)
				fromFile = true
				continue
			}
			got = append(got, p.bytes...)
			shared = shared || (len(p.bytes) > 0 && &p.bytes[0] == &batches[0])
		}
		r.records.close()
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d: the pieces differ from kmsg's encoding:\n got %x\nwant %x", version, got, want)
		}
		if !shared {
			t.Errorf("v%d: the record batches were copied", version)
		}
		if !fromFile {
			t.Errorf("v%d: the log's range is not a piece", version)
		}
	}
}
