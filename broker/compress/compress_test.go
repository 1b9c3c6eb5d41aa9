package compress

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestEveryCodecRoundTrips(t *testing.T) {
	data := bytes.Repeat([]byte("a record batch's records, compressed as one block. "), 200)
	for _, name := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		c, err := Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		if c.String() != name {
			t.Errorf("Parse(%q).String() = %q", name, c)
		}
		packed, err := Compress(c, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c != None && len(packed) >= len(data) {
			t.Errorf("%s: %d bytes did not shrink (%d)", name, len(data), len(packed))
		}
		back, err := Decompress(c, packed)
		if err != nil || !bytes.Equal(back, data) {
			t.Errorf("%s: round trip failed: %v", name, err)
		}
	}
}

func TestParseRefusesUnknownNames(t *testing.T) {
	if _, err := Parse("brotli"); err == nil {
		t.Error("brotli is not a Kafka codec")
	}
}

func TestGarbageIsCorruptMessage(t *testing.T) {
	for _, c := range []Codec{Gzip, Snappy, LZ4, Zstd, Codec(7)} {
		if _, err := Decompress(c, []byte("not compressed at all")); !errors.Is(err, kerr.CorruptMessage) {
			t.Errorf("%s: want CORRUPT_MESSAGE, got %v", c, err)
		}
	}
}
