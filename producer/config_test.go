package producer_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/producer"
)

// configured returns a producer configuration with the given settings, by
// their Java names. New connects lazily, so these tests need no broker.
func configured(t *testing.T, settings ...string) producer.Config {
	t.Helper()
	cfg := producer.DefaultConfig()
	for i := 0; i+1 < len(settings); i += 2 {
		require.NoError(t, cfg.Set(settings[i], settings[i+1]))
	}
	return cfg
}

func TestTheProducerIsIdempotentByDefault(t *testing.T) {
	for _, settings := range [][]string{
		nil,
		{"enable.idempotence", "true"},
		{"enable.idempotence", "true", "acks", "all", "retries", "1", "max.in.flight.requests.per.connection", "5"},
		{"acks", "-1", "max.in.flight.requests.per.connection", "1"},
	} {
		p, err := producer.New(configured(t, settings...))
		require.NoError(t, err, "%v", settings)
		on, why := p.Idempotent()
		assert.True(t, on, "%v: %s", settings, why)
		assert.Empty(t, why)
		require.NoError(t, p.Close())
	}
}

// The settings idempotence cannot work with, and what the Java client says
// of each. Left at its default, idempotence gives way to the first three.
var conflicts = []struct {
	name, value string
	says        string
}{
	{"acks", "1", "Must set acks to all in order to use the idempotent producer. Otherwise we cannot guarantee idempotence."},
	{"acks", "0", "Must set acks to all in order to use the idempotent producer."},
	{"retries", "0", "Must set retries to non-zero when using the idempotent producer."},
	tooManyInFlight,
}

// tooManyInFlight is refused even when idempotence is only the default,
// since Kafka 4.0 (KAFKA-17927).
var tooManyInFlight = struct {
	name, value string
	says        string
}{"max.in.flight.requests.per.connection", "6", "Must set max.in.flight.requests.per.connection to at most 5 to use the idempotent producer."}

// Left at its default, enable.idempotence gives way to acks other than all
// or retries=0, as the Java client's does since KAFKA-13673: the user asked for
// acks=1 and not for idempotence. The producer says why it is not
// idempotent.
func TestAConflictingSettingTurnsTheDefaultIdempotenceOff(t *testing.T) {
	for _, c := range conflicts[:3] {
		p, err := producer.New(configured(t, c.name, c.value))
		require.NoError(t, err, "%s=%s without enable.idempotence is no error", c.name, c.value)
		on, why := p.Idempotent()
		assert.False(t, on, "%s=%s turns the default idempotence off", c.name, c.value)
		assert.Contains(t, why, c.name+"="+c.value, "the reason names the setting")
		assert.Contains(t, why, c.says)
		require.NoError(t, p.Close())
	}
}

// More than 5 requests in flight is refused even when idempotence is only
// the default, as the Java client does since Kafka 4.0: the error says how
// to do without idempotence.
func TestMoreThanFiveInFlightIsRefusedWithTheDefaultIdempotence(t *testing.T) {
	_, err := producer.New(configured(t, tooManyInFlight.name, tooManyInFlight.value))
	require.Error(t, err)
	assert.ErrorContains(t, err, tooManyInFlight.name+"="+tooManyInFlight.value)
	assert.ErrorContains(t, err, tooManyInFlight.says)
	assert.ErrorContains(t, err, "enable.idempotence=false")
}

// Asked for explicitly, idempotence does not give way: New refuses the
// conflict, naming both settings.
func TestAConflictWithExplicitIdempotenceIsRefused(t *testing.T) {
	for _, c := range conflicts {
		for _, order := range [][]string{
			{"enable.idempotence", "true", c.name, c.value},
			{c.name, c.value, "enable.idempotence", "true"},
		} {
			_, err := producer.New(configured(t, order...))
			require.Error(t, err, "%v", order)
			assert.ErrorContains(t, err, "enable.idempotence=true")
			assert.ErrorContains(t, err, c.name+"="+c.value)
			assert.ErrorContains(t, err, c.says)
		}
	}
}

func TestIdempotenceTurnedOffExplicitly(t *testing.T) {
	for _, settings := range [][]string{
		{"enable.idempotence", "false"},
		{"enable.idempotence", "FALSE", "acks", "1", "retries", "0", "max.in.flight.requests.per.connection", "10"},
	} {
		p, err := producer.New(configured(t, settings...))
		require.NoError(t, err, "%v", settings)
		on, why := p.Idempotent()
		assert.False(t, on)
		assert.Equal(t, "enable.idempotence=false", why)
		require.NoError(t, p.Close())
	}
	cfg := producer.DefaultConfig()
	assert.ErrorContains(t, cfg.Set("enable.idempotence", "yes"), "want true or false")
}
