package broker

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
)

// fuzzBroker starts a broker with a topic "t" of two partitions, quiet.
func fuzzBroker(f *testing.F) *Broker {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", f.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := Start(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	if _, err := b.createTopic("t", 2, 1, nil, nil, false); err != nil {
		f.Fatal(err)
	}
	return b
}

// seedFrames are well-formed requests for the fuzzers to start from, with
// the 4-byte size prefix left off.
func seedFrames() [][]byte {
	enc := func(req kmsg.Request, version int16) []byte {
		req.SetVersion(version)
		b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 1)
		b = binary.BigEndian.AppendUint16(b, 4)
		b = append(b, "fuzz"...)
		if req.IsFlexible() {
			b = append(b, 0) // no tagged fields in the header
		}
		return req.AppendTo(b)
	}
	meta := kmsg.NewPtrMetadataRequest()
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = 1
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = log.EncodeBatch(log.Record{Timestamp: time.UnixMilli(1_700_000_000_000), Key: []byte("k"), Value: []byte("v")})
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	list := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -2
	lt.Partitions = append(lt.Partitions, lp)
	list.Topics = append(list.Topics, lt)
	describe := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
	describe.Resources = append(describe.Resources, dr)
	epochs := kmsg.NewPtrOffsetForLeaderEpochRequest()
	et := kmsg.NewOffsetForLeaderEpochRequestTopic()
	et.Topic = "t"
	ep := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	ep.CurrentLeaderEpoch, ep.LeaderEpoch = -1, 0
	et.Partitions = append(et.Partitions, ep)
	epochs.Topics = append(epochs.Topics, et)
	alter := kmsg.NewPtrAlterPartitionRequest()
	alter.BrokerID = 1
	at := kmsg.NewAlterPartitionRequestTopic()
	at.Topic = "t"
	ap := kmsg.NewAlterPartitionRequestTopicPartition()
	ap.NewISR = []int32{1}
	at.Partitions = append(at.Partitions, ap)
	alter.Topics = append(alter.Topics, at)
	elect := kmsg.NewPtrElectLeadersRequest()
	elt := kmsg.NewElectLeadersRequestTopic()
	elt.Topic, elt.Partitions = "t", []int32{0, 1}
	elect.Topics = append(elect.Topics, elt)
	deleteRecords := kmsg.NewPtrDeleteRecordsRequest()
	deleteRecords.TimeoutMillis = 10
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "t"
	dp := kmsg.NewDeleteRecordsRequestTopicPartition()
	dp.Offset = -1
	dt.Partitions = append(dt.Partitions, dp)
	deleteRecords.Topics = append(deleteRecords.Topics, dt)
	logDirs := kmsg.NewPtrDescribeLogDirsRequest()
	lt2 := kmsg.NewDescribeLogDirsRequestTopic()
	lt2.Topic, lt2.Partitions = "t", []int32{0, 1}
	logDirs.Topics = append(logDirs.Topics, lt2)
	incremental := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ir := kmsg.NewIncrementalAlterConfigsRequestResource()
	ir.ResourceType, ir.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
	ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	ic.Name, ic.Op, ic.Value = "cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("compact")
	ir.Configs = append(ir.Configs, ic)
	incremental.Resources = append(incremental.Resources, ir)
	alterConfigs := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeBroker, ""
	ac := kmsg.NewAlterConfigsRequestResourceConfig()
	ac.Name, ac.Value = "follower.replication.throttled.rate", kmsg.StringPtr("1024")
	ar.Configs = append(ar.Configs, ac)
	alterConfigs.Resources = append(alterConfigs.Resources, ar)
	return [][]byte{
		enc(kmsg.NewPtrApiVersionsRequest(), 3),
		enc(incremental, 0), enc(incremental, 1), enc(alterConfigs, 0), enc(alterConfigs, 2),
		enc(epochs, 4), enc(alter, 1), enc(alter, 3), enc(elect, 2),
		enc(meta, 12), enc(meta, 0),
		enc(produce, 9), enc(produce, 3),
		enc(fetch, 12), enc(fetch, 4),
		enc(list, 6),
		enc(describe, 4),
		enc(kmsg.NewPtrDescribeClusterRequest(), 1),
		enc(deleteRecords, 0), enc(deleteRecords, 2),
		enc(logDirs, 0), enc(logDirs, 4), enc(kmsg.NewPtrDescribeLogDirsRequest(), 4),
	}
}

// FuzzServeFrame decodes and handles arbitrary request frames. It may answer
// or refuse them; it must not panic, and it must not hang: a long-polling
// Fetch ends when the request's context does.
func FuzzServeFrame(f *testing.F) {
	b := fuzzBroker(f)
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if out, _ := b.serveFrame(ctx, frame, "/127.0.0.1"); out != nil {
			out.release() // the log files a Fetch's answer holds
		}
	})
}

// FuzzConnection feeds a whole connection arbitrary bytes through net.Pipe,
// as a client would send them, framing included. The connection must end,
// without a panic, once the client has sent everything and hung up.
func FuzzConnection(f *testing.F) {
	b := fuzzBroker(f)
	for _, s := range seedFrames() {
		f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		client, server := net.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done := make(chan struct{})
		go func() {
			b.serveConn(ctx, server, server)
			close(done)
		}()
		go io.Copy(io.Discard, client) // read the answers, or the broker's writer blocks
		client.Write(stream)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the connection did not end after the client hung up")
		}
	})
}
