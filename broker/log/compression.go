package log

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
)

// codec is the compression codec in the low three bits of a batch's
// attributes. Producers compress the records of a batch as one block; the
// log stores the batch as it came and decompresses only to compact it.
type codec int16

const (
	codecNone codec = iota
	codecGzip
	codecSnappy
	codecLZ4
	codecZstd
)

// xerialMagic starts snappy data framed the way the Java client frames it
// (xerial snappy-java): a header, then length-prefixed snappy blocks.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// maxDecompressed bounds what one batch may decompress to, so that a small
// batch cannot make the broker allocate without limit.
const maxDecompressed = 64 << 20

var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecompressed))

// decompress returns the records block of a batch compressed with c.
func decompress(c codec, data []byte) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case codecNone:
		return data, nil
	case codecGzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(data)); err == nil {
			out, err = readLimited(r)
		}
	case codecSnappy:
		out, err = unsnappy(data)
	case codecLZ4:
		out, err = readLimited(lz4.NewReader(bytes.NewReader(data)))
	case codecZstd:
		out, err = zstdDecoder.DecodeAll(data, nil)
	default:
		return nil, fmt.Errorf("%w: unknown compression codec %d", kerr.CorruptMessage, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing codec %d: %v", kerr.CorruptMessage, c, err)
	}
	return out, nil
}

// readLimited reads r to its end, or fails past maxDecompressed bytes.
func readLimited(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err == nil && len(out) > maxDecompressed {
		err = fmt.Errorf("decompresses to more than %d bytes", maxDecompressed)
	}
	return out, err
}

// unsnappy decodes plain snappy or the xerial framing.
func unsnappy(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, xerialMagic) || len(data) < 16 {
		if n, err := snappy.DecodedLen(data); err != nil || n > maxDecompressed {
			return nil, fmt.Errorf("snappy block decodes to %d bytes: %v", n, err)
		}
		return snappy.Decode(nil, data)
	}
	var out []byte
	for rest := data[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, fmt.Errorf("xerial block length cut short")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("xerial block of %d bytes, %d left", n, len(rest))
		}
		if m, err := snappy.DecodedLen(rest[:n]); err != nil || len(out)+m > maxDecompressed {
			return nil, fmt.Errorf("xerial block decodes past %d bytes: %v", maxDecompressed, err)
		}
		block, err := snappy.Decode(nil, rest[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, block...)
		rest = rest[n:]
	}
	return out, nil
}
