package main

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPerfStreams runs a small perf streams: both word counts write every
// count, and the run ends with their ratio.
func TestPerfStreams(t *testing.T) {
	out, err := capture(t, func() error {
		return perfStreams([]string{"--num-records", "2000", "--partitions", "2", "--dir", t.TempDir()})
	})
	require.NoError(t, err)
	t.Log("\n" + out)
	assert.Len(t, regexp.MustCompile(`(?m)^  loop +2000 lines in`).FindAllString(out, -1), 2)
	assert.Len(t, regexp.MustCompile(`(?m)^  streams +2000 lines in`).FindAllString(out, -1), 2)
	assert.Regexp(t, `streams/loop = \d+\.\d\d in lines/sec`, out)
}
