package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/compress"
)

// The fixed header of a v2 record batch, as Kafka writes it on the wire and
// on disk. Offsets are byte positions in the batch.
const (
	offBaseOffset      = 0  // int64, assigned by the log
	offBatchLength     = 8  // int32, bytes after this field
	offLeaderEpoch     = 12 // int32
	offMagic           = 16 // int8, always 2
	offCRC             = 17 // uint32, CRC-32C of everything from attributes on
	offAttributes      = 21 // int16
	offLastOffsetDelta = 23 // int32
	offFirstTimestamp  = 27 // int64
	offMaxTimestamp    = 35 // int64
	offRecordCount     = 57 // int32
	batchHeaderSize    = 61

	// lengthPrefix is the part of the header before the batch length counts:
	// the base offset and the length itself.
	lengthPrefix = 12
)

// castagnoli is the CRC-32C table; Kafka chose CRC-32C for v2 batches because
// modern CPUs compute it in hardware.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is what the log needs to know of a batch without decoding its records.
type header struct {
	baseOffset      int64
	size            int64 // whole batch in bytes, including the 12-byte prefix
	lastOffsetDelta int32
	maxTimestamp    int64
}

// lastOffset is the offset of the batch's last record.
func (h header) lastOffset() int64 { return h.baseOffset + int64(h.lastOffsetDelta) }

// readHeader decodes the fixed header at the start of b. It checks only that
// the header is there; checkBatch checks the rest.
func readHeader(b []byte) (header, error) {
	if len(b) < batchHeaderSize {
		return header{}, fmt.Errorf("%w: batch of %d bytes is shorter than its %d-byte header",
			kerr.CorruptMessage, len(b), batchHeaderSize)
	}
	length := int64(int32(binary.BigEndian.Uint32(b[offBatchLength:])))
	if length < batchHeaderSize-lengthPrefix {
		return header{}, fmt.Errorf("%w: batch length %d is shorter than a batch header",
			kerr.CorruptMessage, length)
	}
	return header{
		baseOffset:      int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		size:            lengthPrefix + length,
		lastOffsetDelta: int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		maxTimestamp:    int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
	}, nil
}

// checkBatch verifies that b holds exactly one well-formed v2 batch and
// returns its header. The log calls it on every append and, during
// recovery, on every batch of the last segment.
func checkBatch(b []byte) (header, error) {
	h, err := readHeader(b)
	if err != nil {
		return h, err
	}
	//klab:lesson 02 begin checkBatch
	if h.size != int64(len(b)) {
		return h, fmt.Errorf("%w: batch length field says %d bytes, got %d",
			kerr.CorruptMessage, h.size, len(b))
	}
	if magic := b[offMagic]; magic != 2 {
		return h, fmt.Errorf("%w: record batch magic %d, only v2 batches are stored",
			kerr.InvalidRecord, magic)
	}
	want := binary.BigEndian.Uint32(b[offCRC:])
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != want {
		return h, fmt.Errorf("%w: CRC-32C is %08x, the batch says %08x",
			kerr.CorruptMessage, got, want)
	}
	count := int32(binary.BigEndian.Uint32(b[offRecordCount:]))
	if h.lastOffsetDelta < 0 || count < 0 || int64(count) > int64(h.lastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: %d records cannot span last offset delta %d",
			kerr.CorruptMessage, count, h.lastOffsetDelta)
	}
	return h, nil
	//klab:lesson 02 stub
	// return h, lessons.Todo("02", "checkBatch")
	//klab:lesson 02 end
}

// CheckBatch verifies one whole v2 batch: its length, magic and CRC-32C,
// as the log does on append and a consumer does with check.crcs.
func CheckBatch(b []byte) error {
	_, err := checkBatch(b)
	return err
}

// setBaseOffset stamps the offset the log assigned on a batch. The CRC does
// not cover the base offset, so the producer's checksum stays valid.
func setBaseOffset(b []byte, base int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
}

// Record is one record of a batch, with the absolute offset and timestamp
// that the batch header and the record's deltas add up to.
type Record struct {
	Offset    int64
	Timestamp time.Time
	Key       []byte
	// Value is nil for a tombstone: on a compacted topic it deletes the key.
	Value   []byte
	Headers []kmsg.Header
}

// EncodeBatch builds an uncompressed v2 batch of recs, as a producer would,
// with base offset 0, producer id -1 (not idempotent) and a valid CRC. Record
// offsets are taken relative to the first record's; a record's Offset is
// only a position here, the log assigns the real ones.
func EncodeBatch(recs ...Record) []byte {
	return EncodeIdempotentBatch(-1, -1, -1, recs...)
}

// EncodeIdempotentBatch is EncodeBatch for an idempotent producer: the
// batch carries its producer id, epoch and the sequence of its first
// record (lesson 09). Producer id -1 (with epoch and sequence -1) is a
// producer that is not idempotent.
func EncodeIdempotentBatch(producerID int64, epoch int16, baseSequence int32, recs ...Record) []byte {
	if len(recs) == 0 {
		panic("log: EncodeBatch needs at least one record")
	}
	first, maxTS := recs[0].Timestamp.UnixMilli(), recs[0].Timestamp.UnixMilli()
	var body []byte
	for i, r := range recs {
		ts := r.Timestamp.UnixMilli()
		maxTS = max(maxTS, ts)
		delta := int32(i)
		if r.Offset > recs[0].Offset {
			delta = int32(r.Offset - recs[0].Offset)
		}
		body = AppendRecord(body, kmsg.Record{
			TimestampDelta64: ts - first,
			OffsetDelta:      delta,
			Key:              r.Key,
			Value:            r.Value,
			Headers:          r.Headers,
		})
	}
	last := int32(len(recs) - 1)
	if d := recs[len(recs)-1].Offset - recs[0].Offset; d > int64(last) {
		last = int32(d)
	}
	return SealBatch(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      last,
		FirstTimestamp:       first,
		MaxTimestamp:         maxTS,
		ProducerID:           producerID,
		ProducerEpoch:        epoch,
		FirstSequence:        baseSequence,
		NumRecords:           int32(len(recs)),
	}, body)
}

// SealBatch encodes rb around an encoded records block (compressed or not),
// setting the batch's length and its CRC-32C, as a producer finishes a batch.
func SealBatch(rb kmsg.RecordBatch, records []byte) []byte {
	rb.Records = records
	rb.Length = int32(batchHeaderSize - lengthPrefix + len(records))
	b := rb.AppendTo(make([]byte, 0, batchHeaderSize+len(records)))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// AppendRecord appends r, encoded with its length prefix, to a records
// block. kmsg writes the Length field as given, so it is computed first.
func AppendRecord(dst []byte, r kmsg.Record) []byte {
	r.Length = int32(recordBodySize(r))
	return r.AppendTo(dst)
}

// RecordSize is how many bytes AppendRecord adds for r.
func RecordSize(r kmsg.Record) int {
	n := recordBodySize(r)
	return varintLen(int64(n)) + n
}

// recordBodySize is the size of a record after its length prefix.
func recordBodySize(r kmsg.Record) int {
	ts := r.TimestampDelta64
	if ts == 0 {
		ts = int64(r.TimestampDelta)
	}
	n := 1 + varintLen(ts) + varintLen(int64(r.OffsetDelta)) + bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	return n
}

// BatchHeaderSize is the fixed part of a v2 record batch, before its records.
const BatchHeaderSize = batchHeaderSize

// varintLen is the size of x as a zig-zag varint, as records encode numbers.
func varintLen(x int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], x)
}

// bytesLen is the size of a varint-length-prefixed byte string; null is -1.
func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

// Batches splits raw, batches end to end as Read returns them or a Produce
// request carries them, into one slice per batch, by their length fields.
// It checks the framing only: checkBatch checks the rest. No batch at all
// is CORRUPT_MESSAGE too.
func Batches(raw []byte) ([][]byte, error) {
	return appendBatches(nil, raw)
}

// appendBatches is Batches appending to out, so that a caller can split
// into a slice it already has.
func appendBatches(out [][]byte, raw []byte) ([][]byte, error) {
	out = out[:0]
	for len(raw) > 0 {
		h, err := readHeader(raw)
		if err != nil {
			return nil, err
		}
		if h.size > int64(len(raw)) {
			return nil, fmt.Errorf("%w: batch at offset %d needs %d bytes, %d left",
				kerr.CorruptMessage, h.baseOffset, h.size, len(raw))
		}
		out = append(out, raw[:h.size:h.size])
		raw = raw[h.size:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no record batch", kerr.CorruptMessage)
	}
	return out, nil
}

// WholeBatches returns the part of raw that holds whole batches: a broker
// may end a Fetch answer with part of a batch that did not fit, and a
// consumer drops that part and fetches it again from its offset.
func WholeBatches(raw []byte) []byte {
	n := int64(0)
	for {
		rest := raw[n:]
		if len(rest) < batchHeaderSize {
			break
		}
		h, err := readHeader(rest)
		if err != nil || h.size > int64(len(rest)) {
			break
		}
		n += h.size
	}
	return raw[:n]
}

// NextOffset is the offset after the last whole batch in raw, which is
// where a consumer's next fetch starts, found from the batch headers alone;
// -1 if raw holds no whole batch.
func NextOffset(raw []byte) int64 {
	next := int64(-1)
	for rest := WholeBatches(raw); len(rest) > 0; {
		h, _ := readHeader(rest)
		next = h.lastOffset() + 1
		rest = rest[h.size:]
	}
	return next
}

// DecodeRecords decodes every batch in raw, as Read returns it, and returns
// their records with absolute offsets, decompressing where needed.
func DecodeRecords(raw []byte) ([]Record, error) {
	return AppendRecords(nil, raw)
}

// CountRecords is how many records the batches in raw say they hold.
func CountRecords(raw []byte) int {
	count := 0
	for rest := WholeBatches(raw); len(rest) > 0; {
		h, _ := readHeader(rest)
		count += max(int(int32(binary.BigEndian.Uint32(rest[offRecordCount:]))), 0)
		rest = rest[h.size:]
	}
	return count
}

// AppendRecords decodes every batch in raw and appends their records to
// dst, as a consumer fills its buffer. The records' keys and values point
// into raw (or into the decompressed block): raw must not change after.
func AppendRecords(dst []Record, raw []byte) ([]Record, error) {
	if len(raw) == 0 {
		return dst, nil
	}
	batches, err := Batches(raw)
	if err != nil {
		return dst, err
	}
	count := 0 // room for every record at once, from the batch headers
	for _, b := range batches {
		count += max(int(int32(binary.BigEndian.Uint32(b[offRecordCount:]))), 0)
	}
	dst = slices.Grow(dst, min(count, len(raw)/minRecordSize+1))
	for _, b := range batches {
		if dst, err = appendBatchRecords(dst, b); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// batchRecords decodes the records of one batch.
func batchRecords(b []byte) ([]Record, error) {
	return appendBatchRecords(nil, b)
}

// appendBatchRecords decodes one batch's records onto dst.
func appendBatchRecords(dst []Record, b []byte) ([]Record, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		return dst, fmt.Errorf("%w: %v", kerr.CorruptMessage, err)
	}
	data, err := compress.Decompress(compress.Codec(rb.Attributes&compress.Mask), rb.Records)
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, min(max(int(rb.NumRecords), 0), len(data)/minRecordSize+1))
	for i := int32(0); i < rb.NumRecords; i++ {
		var r kmsg.Record // fresh each time: kmsg reuses a record's header slice
		n, err := readRecord(data, &r)
		if err != nil {
			return dst, fmt.Errorf("%w: record %d of batch at offset %d: %v", kerr.CorruptMessage, i, rb.FirstOffset, err)
		}
		data = data[n:]
		dst = append(dst, toRecord(rb, r))
	}
	return dst, nil
}

// readRecord decodes the record at the start of data and returns how many
// bytes it took.
func readRecord(data []byte, r *kmsg.Record) (int, error) {
	length, n := binary.Varint(data)
	if n <= 0 || length < 0 || int64(len(data)-n) < length {
		return 0, fmt.Errorf("record length %d does not fit in %d bytes", length, len(data))
	}
	size := n + int(length)
	if err := r.ReadFrom(data[:size]); err != nil {
		return 0, err
	}
	return size, nil
}
