package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/hashicorp/raft"
)

// Both files in a store directory are sequences of records framed the same
// way:
//
//	uint32  payload length (big endian, never 0)
//	uint32  CRC-32C of the payload (big endian)
//	payload
//
// The length lets a reader find where one record ends and the next begins;
// the checksum lets it tell a record that was written completely from one a
// crash cut short, or from whatever bytes the filesystem left behind it.
const recordHeaderSize = 8

// castagnoli is the CRC-32C table. CRC-32C is the checksum Kafka itself uses
// for record batches, and modern CPUs compute it in hardware.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord frames payload as one record and appends it to dst.
func appendRecord(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// readRecord reads the record at the start of buf. It returns the payload and
// the number of bytes the whole record occupies. ok is false when buf does not
// start with a complete record whose checksum matches: that is what a torn
// write looks like.
func readRecord(buf []byte) (payload []byte, n int, ok bool) {
	if len(buf) < recordHeaderSize {
		return nil, 0, false
	}
	length := binary.BigEndian.Uint32(buf[0:4])
	sum := binary.BigEndian.Uint32(buf[4:8])
	// A zero length is never written (every payload has at least one byte).
	// Rejecting it matters: after a crash some filesystems show a file's
	// tail as zeros, and a zero header would otherwise pass as an empty
	// record, because the CRC-32C of no bytes is 0.
	//
	// The length is compared as uint64 so that a garbage length near 4 GiB
	// cannot overflow int on a 32-bit platform.
	if length == 0 || uint64(length) > uint64(len(buf)-recordHeaderSize) {
		return nil, 0, false
	}
	end := recordHeaderSize + int(length)
	payload = buf[recordHeaderSize:end]
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, 0, false
	}
	return payload, end, true
}

// appendLogPayload encodes every field of a raft.Log and appends it to dst:
//
//	uint64  Index
//	uint64  Term
//	uint8   Type
//	bytes   Data
//	bytes   Extensions
//	bytes   AppendedAt, as produced by time.Time.MarshalBinary
//
// where "bytes" is a uvarint length followed by that many bytes.
func appendLogPayload(dst []byte, l *raft.Log) ([]byte, error) {
	// MarshalBinary keeps the wall clock to the nanosecond and the zone
	// offset; it drops the monotonic clock reading, which means nothing
	// outside this process anyway.
	appendedAt, err := l.AppendedAt.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("raftstore: encoding AppendedAt of log %d: %w", l.Index, err)
	}
	dst = binary.BigEndian.AppendUint64(dst, l.Index)
	dst = binary.BigEndian.AppendUint64(dst, l.Term)
	dst = append(dst, byte(l.Type))
	dst = appendBytes(dst, l.Data)
	dst = appendBytes(dst, l.Extensions)
	dst = appendBytes(dst, appendedAt)
	return dst, nil
}

// decodeLogPayload is the inverse of appendLogPayload.
func decodeLogPayload(payload []byte) (raft.Log, error) {
	d := decoder{buf: payload}
	var l raft.Log
	l.Index = d.uint64()
	l.Term = d.uint64()
	l.Type = raft.LogType(d.uint8())
	l.Data = d.bytes()
	l.Extensions = d.bytes()
	appendedAt := d.bytes()
	if err := d.finish(); err != nil {
		return raft.Log{}, err
	}
	if err := l.AppendedAt.UnmarshalBinary(appendedAt); err != nil {
		return raft.Log{}, fmt.Errorf("raftstore: decoding AppendedAt: %w", err)
	}
	return l, nil
}

// appendStablePayload encodes the stable key/value pairs: a uvarint count,
// then each key and its value as "bytes". Keys are written in sorted order
// so the same map always produces the same file, which makes it easy to
// inspect and compare.
func appendStablePayload(dst []byte, kv map[string][]byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(kv)))
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = appendBytes(dst, []byte(k))
		dst = appendBytes(dst, kv[k])
	}
	return dst
}

// decodeStablePayload is the inverse of appendStablePayload.
func decodeStablePayload(payload []byte) (map[string][]byte, error) {
	d := decoder{buf: payload}
	count := d.uvarint()
	kv := make(map[string][]byte)
	// Each pair takes at least two bytes (two zero lengths), so a count
	// larger than that is corrupt; checking stops a bad count from
	// spinning through billions of iterations.
	if count > uint64(len(payload)) {
		return nil, errors.New("raftstore: stable file: key count larger than the file")
	}
	for range count {
		k := d.bytes()
		v := d.bytes()
		kv[string(k)] = v
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return kv, nil
}

// appendBytes appends b prefixed with its length as a uvarint.
func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// decoder reads fields from a payload front to back. The first field that
// does not fit sets err and every later read returns a zero value, so a
// decoding function can read all its fields and check for an error once,
// with finish, instead of after every field.
type decoder struct {
	buf []byte
	err error
}

// errShort is recorded when a payload ends in the middle of a field.
var errShort = errors.New("raftstore: record payload too short")

func (d *decoder) uint64() uint64 {
	if d.err != nil || len(d.buf) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

func (d *decoder) uint8() uint8 {
	if d.err != nil || len(d.buf) < 1 {
		d.fail()
		return 0
	}
	v := d.buf[0]
	d.buf = d.buf[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// bytes reads a length-prefixed byte string. It returns a copy, so the
// decoded value does not keep the whole file's buffer alive, and nil for a
// zero length.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.buf)) {
		d.fail()
		return nil
	}
	if n == 0 {
		return nil
	}
	v := slices.Clone(d.buf[:n])
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errShort
	}
}

// finish reports the first error, or an error if bytes are left over: a
// payload that decodes with bytes to spare was not written by this code.
func (d *decoder) finish() error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("raftstore: %d unexpected bytes after record payload", len(d.buf))
	}
	return nil
}
