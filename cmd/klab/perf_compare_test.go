package main

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPerfCompareOnlyTheCheapFigures runs perf compare on two of its
// figures at a tiny size: one table, a row for each, with the ratio, the
// target and whether it is met.
func TestPerfCompareOnlyTheCheapFigures(t *testing.T) {
	out, err := capture(t, func() error {
		return perfCompare([]string{"--only", "produce,consume", "--num-records", "1000", "--partitions", "2", "--dir", t.TempDir()})
	})
	require.NoError(t, err)
	t.Log("\n" + out)
	assert.Regexp(t, `(?m)^figure +klab +peer +ratio +target +met$`, out)
	assert.Regexp(t, `(?m)^produce acks=1, 2 partitions +\d+ rec/s +\d+ rec/s +\d+\.\d\d +≥ 1\.20 +(met|NOT MET)$`, out)
	assert.Regexp(t, `(?m)^consume, 2 partitions +\d+ rec/s +\d+ rec/s +\d+\.\d\d +≥ 1\.00 +(met|NOT MET)$`, out)
	assert.Len(t, regexp.MustCompile(`(?m)rec/s .* (met|NOT MET)$`).FindAllString(out, -1), 2, "only the figures asked for")
}

func TestPerfCompareRefusesAnUnknownFigure(t *testing.T) {
	_, err := capture(t, func() error { return perfCompare([]string{"--only", "latency", "--dir", t.TempDir()}) })
	assert.ErrorContains(t, err, `no figure set "latency"`)
}
