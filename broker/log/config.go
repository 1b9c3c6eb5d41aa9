package log

import (
	"strings"
	"time"
)

// Cleanup policies, as Kafka spells them in cleanup.policy.
const (
	CleanupDelete  = "delete"
	CleanupCompact = "compact"
)

// Config holds a log's settings. Each field is the Kafka topic config its
// comment names (a duration such as Retention holds a *.ms config as a
// time.Duration); the zero value of a field means Kafka's default, so a
// duration of zero is given as a millisecond (timestamps have no finer grain).
type Config struct {
	// SegmentBytes is segment.bytes: a segment is rolled before it would
	// grow past this size. Kafka's default is 1 GiB.
	SegmentBytes int64
	// IndexIntervalBytes is index.interval.bytes: how many bytes of batches
	// are written between two entries of the sparse offset index. Default 4096.
	IndexIntervalBytes int64
	// Retention is retention.ms: segments whose newest record is older
	// than this are deleted. Default 7 days; a negative value keeps data forever.
	Retention time.Duration
	// RetentionBytes is retention.bytes: the oldest segments are deleted while
	// the log is larger than this. Default -1, no limit.
	RetentionBytes int64
	// CleanupPolicy is cleanup.policy: "delete", "compact" or "compact,delete".
	CleanupPolicy string
	// DeleteRetention is delete.retention.ms: how long a tombstone (a record
	// with a null value) survives compaction. Default 1 day.
	DeleteRetention time.Duration
	// MaxMessageBytes is max.message.bytes: the largest batch Append takes.
	// Default 1048588 (1 MiB and a batch header).
	MaxMessageBytes int64
	// ProducerIDExpiration is producer.id.expiration.ms, a broker config in
	// Kafka: a producer that has written nothing for this long is forgotten
	// by ExpireProducers. Default 1 day.
	ProducerIDExpiration time.Duration
}

// withDefaults returns c with every zero field set to Kafka's default.
func (c Config) withDefaults() Config {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = 4096
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = -1
	}
	if c.CleanupPolicy == "" {
		c.CleanupPolicy = CleanupDelete
	}
	if c.DeleteRetention == 0 {
		c.DeleteRetention = 24 * time.Hour
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1048588
	}
	if c.ProducerIDExpiration == 0 {
		c.ProducerIDExpiration = 24 * time.Hour
	}
	return c
}

// has reports whether the cleanup policy includes p.
func (c Config) has(p string) bool {
	for _, q := range strings.Split(c.CleanupPolicy, ",") {
		if strings.TrimSpace(q) == p {
			return true
		}
	}
	return false
}
