package producer

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"klab.dev/klab/broker/compress"
)

// Config is a producer's configuration. Set takes the Java client's names.
type Config struct {
	// BootstrapServers is bootstrap.servers: where the producer first asks
	// for metadata. It need not list every broker.
	BootstrapServers []string
	// ClientID is client.id, sent with every request.
	ClientID string
	// Acks is acks: 0 (no answer), 1 (the leader has it) or -1 (all: every
	// in-sync replica has it).
	Acks int16
	// BatchSize is batch.size: a batch is sent once it holds this many
	// bytes, whatever linger.ms says.
	BatchSize int
	// Linger is linger.ms: how long a batch waits for more records.
	Linger time.Duration
	// Compression is compression.type.
	Compression compress.Codec
	// Retries is retries: how many times a batch is sent again after a
	// retriable error, within DeliveryTimeout.
	Retries int
	// RetryBackoff is retry.backoff.ms.
	RetryBackoff time.Duration
	// DeliveryTimeout is delivery.timeout.ms: how long a record may take,
	// from Send to its answer, retries included.
	DeliveryTimeout time.Duration
	// RequestTimeout is request.timeout.ms: how long one request may take.
	RequestTimeout time.Duration
	// MaxInFlight is max.in.flight.requests.per.connection.
	MaxInFlight int
	// BufferMemory is buffer.memory: the bytes of records waiting to be
	// sent; Send blocks while it is full.
	BufferMemory int
	// MaxBlock is max.block.ms: how long Send may block for metadata or
	// buffer space.
	MaxBlock time.Duration
	// MetadataMaxAge is metadata.max.age.ms: how often metadata is
	// refreshed even without an error, so that new partitions are seen.
	MetadataMaxAge time.Duration
	// EnableIdempotence is enable.idempotence: the producer gets a
	// producer id and numbers its batches, so that the broker writes a
	// retried batch once and a partition's batches in the order they were
	// sent (lesson 09). It needs acks=all, retries above 0 and
	// max.in.flight.requests.per.connection at most 5. Left at its
	// default, it turns itself off when another setting conflicts
	// (Producer.Idempotent says why); set to true with Set, a conflict
	// makes New fail.
	EnableIdempotence bool

	// idempotenceSet records that Set was given enable.idempotence: the
	// user asked for it, so a conflicting setting is their mistake to
	// hear about, not a reason to quietly do without.
	idempotenceSet bool
}

// DefaultConfig is the Java client's defaults, as of Kafka 4.0: acks=all
// and enable.idempotence=true (since 3.0, KIP-679), linger.ms=5 (since
// 4.0, KIP-1030).
func DefaultConfig() Config {
	return Config{
		BootstrapServers:  []string{"127.0.0.1:9092"},
		ClientID:          "klab-producer",
		Acks:              -1,
		BatchSize:         16384,
		Linger:            5 * time.Millisecond,
		Compression:       compress.None,
		Retries:           math.MaxInt32,
		RetryBackoff:      100 * time.Millisecond,
		DeliveryTimeout:   120 * time.Second,
		RequestTimeout:    30 * time.Second,
		MaxInFlight:       5,
		BufferMemory:      32 << 20,
		MaxBlock:          60 * time.Second,
		MetadataMaxAge:    5 * time.Minute,
		EnableIdempotence: true,
	}
}

// Set applies one setting by the Java client's name for it.
func (c *Config) Set(name, value string) error {
	value = strings.TrimSpace(value)
	ms := func(dst *time.Duration) error {
		n, err := strconv.ParseInt(value, 10, 64)
		*dst = time.Duration(n) * time.Millisecond
		return err
	}
	num := func(dst *int) error {
		n, err := strconv.Atoi(value)
		*dst = n
		return err
	}
	var err error
	switch name {
	case "bootstrap.servers":
		c.BootstrapServers = strings.Split(value, ",")
	case "client.id":
		c.ClientID = value
	case "acks":
		switch value {
		case "all", "-1":
			c.Acks = -1
		case "0", "1":
			c.Acks = int16(value[0] - '0')
		default:
			err = fmt.Errorf("want 0, 1, all or -1")
		}
	case "batch.size":
		err = num(&c.BatchSize)
	case "linger.ms":
		err = ms(&c.Linger)
	case "compression.type":
		c.Compression, err = compress.Parse(value)
	case "retries":
		err = num(&c.Retries)
	case "retry.backoff.ms":
		err = ms(&c.RetryBackoff)
	case "delivery.timeout.ms":
		err = ms(&c.DeliveryTimeout)
	case "request.timeout.ms":
		err = ms(&c.RequestTimeout)
	case "max.in.flight.requests.per.connection":
		err = num(&c.MaxInFlight)
	case "buffer.memory":
		err = num(&c.BufferMemory)
	case "max.block.ms":
		err = ms(&c.MaxBlock)
	case "metadata.max.age.ms":
		err = ms(&c.MetadataMaxAge)
	case "enable.idempotence":
		switch strings.ToLower(value) {
		case "true", "false":
			c.EnableIdempotence = strings.EqualFold(value, "true")
			c.idempotenceSet = true
		default:
			err = fmt.Errorf("want true or false")
		}
	default:
		return fmt.Errorf("unknown producer config %q", name)
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", name, value, err)
	}
	return nil
}

func (c Config) validate() error {
	switch {
	case len(c.BootstrapServers) == 0:
		return fmt.Errorf("bootstrap.servers is empty")
	case c.BatchSize <= 0:
		return fmt.Errorf("batch.size must be positive")
	case c.MaxInFlight <= 0:
		return fmt.Errorf("max.in.flight.requests.per.connection must be positive")
	case c.BufferMemory < c.BatchSize:
		return fmt.Errorf("buffer.memory must hold at least one batch")
	}
	return nil
}

// maxInFlightForIdempotence is the most requests an idempotent producer
// may have in flight to a broker: a partition remembers the last 5 batches
// of each producer (Kafka's NUM_BATCHES_TO_RETAIN, klab's log.BatchesKept),
// so a retry of any batch still in flight is recognised as one.
const maxInFlightForIdempotence = 5

// idempotence decides whether the producer is idempotent, as the Java
// client's ProducerConfig does since 3.0. Idempotence needs acks=all (a
// batch only the leader had can be lost with it, and the producer would
// not know to send it again), retries (making them safe is its purpose)
// and at most 5 requests in flight. A conflicting setting is an error if
// enable.idempotence was set explicitly; otherwise it turns idempotence
// off, and why says so: the user asked for acks=1 and did not ask for
// idempotence, so they get what they asked for. More than 5 in flight is
// an error either way, as in Kafka 4.0.
func (c Config) idempotence() (on bool, why string, err error) {
	if !c.EnableIdempotence {
		return false, "enable.idempotence=false", nil
	}
	conflicts := []struct {
		broken  bool
		setting string
		rule    string // the Java client's ConfigException message
		// always fails, even when idempotence is only the default: since
		// Kafka 4.0 (KAFKA-17927), more than 5 requests in flight is an
		// error, no longer a silent way to turn idempotence off.
		always bool
	}{
		{c.Acks != -1, fmt.Sprintf("acks=%d", c.Acks),
			"Must set acks to all in order to use the idempotent producer. Otherwise we cannot guarantee idempotence.", false},
		{c.Retries <= 0, fmt.Sprintf("retries=%d", c.Retries),
			"Must set retries to non-zero when using the idempotent producer.", false},
		{c.MaxInFlight > maxInFlightForIdempotence, fmt.Sprintf("max.in.flight.requests.per.connection=%d", c.MaxInFlight),
			"Must set max.in.flight.requests.per.connection to at most 5 to use the idempotent producer.", true},
	}
	for _, x := range conflicts {
		switch {
		case !x.broken:
		case c.idempotenceSet:
			return false, "", fmt.Errorf("enable.idempotence=true and %s: %s", x.setting, x.rule)
		case x.always:
			return false, "", fmt.Errorf("%s with enable.idempotence=true, its default: %s Set enable.idempotence=false to send more at once, without idempotence.", x.setting, x.rule)
		default:
			return false, fmt.Sprintf("idempotence is off: the default enable.idempotence=true gives way to %s (%s)", x.setting, x.rule), nil
		}
	}
	return true, "", nil
}
