// Package compress holds the compression codecs of Kafka's record batches:
// gzip, snappy, lz4 and zstd, as compression.type names them. A producer
// compresses the records block of a batch as one unit; the broker stores
// the batch as it came and decompresses only to compact it; the consumer
// decompresses.
package compress

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

// Codec is a compression codec, as the low three bits of a batch's
// attributes number it.
type Codec int16

// The codecs, by their number in a batch's attributes.
const (
	None Codec = iota
	Gzip
	Snappy
	LZ4
	Zstd
)

// Mask selects the codec bits of a batch's attributes.
const Mask = 0x07

var names = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func (c Codec) String() string {
	if c >= 0 && int(c) < len(names) {
		return names[c]
	}
	return fmt.Sprintf("codec(%d)", int16(c))
}

// Parse reads a compression.type value: none, gzip, snappy, lz4 or zstd.
func Parse(name string) (Codec, error) {
	for i, n := range names {
		if n == name {
			return Codec(i), nil
		}
	}
	return None, fmt.Errorf("compression.type %q: want none, gzip, snappy, lz4 or zstd", name)
}

// xerialMagic starts snappy data framed the way the Java client frames it
// (xerial snappy-java): a header, then length-prefixed snappy blocks.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// maxDecompressed bounds what one batch may decompress to, so that a small
// batch cannot make the broker allocate without limit.
const maxDecompressed = 64 << 20

var (
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecompressed))
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
)

// Compress compresses a batch's records block with c.
func Compress(c Codec, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch c {
	case None:
		return data, nil
	case Gzip:
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Snappy:
		// A plain snappy block, as librdkafka writes it; Kafka's clients
		// read it as well as the Java client's xerial framing.
		return snappy.Encode(nil, data), nil
	case LZ4:
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Zstd:
		return zstdEncoder.EncodeAll(data, nil), nil
	}
	return nil, fmt.Errorf("unknown compression codec %d", c)
}

// Decompress returns the records block of a batch compressed with c. A
// block that does not decompress, or would decompress to more than 64 MiB,
// is CORRUPT_MESSAGE.
func Decompress(c Codec, data []byte) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case None:
		return data, nil
	case Gzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(data)); err == nil {
			out, err = readLimited(r)
		}
	case Snappy:
		out, err = unsnappy(data)
	case LZ4:
		out, err = readLimited(lz4.NewReader(bytes.NewReader(data)))
	case Zstd:
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
