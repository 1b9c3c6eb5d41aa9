package course

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const catalogue = `# a comment
=== empty is fine
region: upper
kind: mistake
why: An empty string is not an error;
  upper-casing it is.
--- replace
if s == "" {
--- with
if false {

=== lower-cases
region: upper
kind: misconception
why: ToLower is not ToUpper.
--- replace
	return strings.ToUpper(s), nil
--- with
	return strings.ToLower(s), nil
`

func TestParseMutants(t *testing.T) {
	ms, err := parseMutants("mutants.txt", "01", []byte(catalogue))
	require.NoError(t, err)
	require.Len(t, ms, 2)
	assert.Equal(t, "empty is fine", ms[0].Name)
	assert.Equal(t, "upper", ms[0].Region)
	assert.Equal(t, "An empty string is not an error; upper-casing it is.", ms[0].Why)
	assert.Equal(t, []string{`if s == "" {`}, ms[0].Edits[0].Replace)

	for name, bad := range map[string]string{
		"no region":    "=== x\nkind: mistake\nwhy: y\n--- replace\na\n--- with\nb\n",
		"no why":       "=== x\nregion: r\nkind: mistake\n--- replace\na\n--- with\nb\n",
		"bad kind":     "=== x\nregion: r\nkind: typo\nwhy: y\n--- replace\na\n--- with\nb\n",
		"no edit":      "=== x\nregion: r\nkind: mistake\nwhy: y\n",
		"stray text":   "hello\n",
		"with first":   "=== x\nregion: r\nkind: mistake\nwhy: y\n--- with\nb\n",
		"twice a name": "=== x\nregion: r\nkind: mistake\nwhy: y\n--- replace\na\n--- with\nb\n=== x\nregion: r\nkind: mistake\nwhy: y\n--- replace\na\n--- with\nb\n",
	} {
		_, err := parseMutants("mutants.txt", "01", []byte(bad))
		assert.Error(t, err, name)
	}
}

func TestApplyEditMatchesOncePieceOrLines(t *testing.T) {
	body := strings.SplitAfter("\tif a < b {\n\t\treturn a\n\t}\n\treturn b\n", "\n")
	out, err := applyEdit(body, Edit{Replace: []string{"a < b"}, With: []string{"a <= b"}})
	require.NoError(t, err)
	assert.Equal(t, "\tif a <= b {\n", out[0])

	out, err = applyEdit(body, Edit{Replace: []string{"if a < b {", "    return a", "}"}, With: []string{"if a < b {", "\treturn b", "}"}})
	require.NoError(t, err)
	assert.Equal(t, "\tif a < b {\n\t\treturn b\n\t}\n\treturn b\n", strings.Join(out, ""), "lines match whatever their indentation, and land indented")

	_, err = applyEdit(body, Edit{Replace: []string{"return"}, With: []string{"x"}})
	assert.ErrorContains(t, err, "2 times", "an ambiguous edit does not apply")
	_, err = applyEdit(body, Edit{Replace: []string{"a > b"}, With: []string{"x"}})
	assert.ErrorContains(t, err, "0 times", "an edit whose text is gone does not apply")
}

func TestMutationsStayInsideRegions(t *testing.T) {
	ms, err := mutationsOf("demo.go", []byte(reference), []Region{{Lesson: "01", Name: "upper", File: "demo.go", Line: 9}})
	require.NoError(t, err)
	var got []string
	for _, m := range ms {
		got = append(got, m.Operator+": "+oneLine(m.From)+" → "+m.To)
		assert.Equal(t, "upper", m.Region)
		assert.GreaterOrEqual(t, m.Line, 10)
		assert.Less(t, m.Line, 14)
	}
	assert.Contains(t, got, `negate: == → !=`)
	assert.Contains(t, got, `negate: s == "" → !(s == "")`)
	for _, g := range got {
		assert.NotContains(t, g, "ToLower", "lesson 02's region is not lesson 01's to mutate")
	}
	for _, m := range ms {
		if m.To == "!=" {
			assert.Contains(t, string(m.apply([]byte(reference))), `if s != "" {`)
		}
	}
}

func TestFirstFailureSaysWhatWentWrongInOneLine(t *testing.T) {
	testify := "=== RUN   TestX\n    x_test.go:40: \n        \tError Trace:\t/a/x_test.go:40\n        \tError:      \tReceived unexpected error:\n        \t            \tlesson 01: implement (*segment).find — see lessons/01-commit-log/README.md\n        \tTest:       \tTestX\n        \tMessages:   \tread offset 5\n--- FAIL: TestX (0.00s)\n"
	assert.Equal(t, "read offset 5 — Received unexpected error: lesson 01: implement (*segment).find — see lessons/01-commit-log/README.md", firstFailure(testify))
	assert.Equal(t, "want 3 records, got 2", firstFailure("=== RUN   TestY\n    y_test.go:12: want 3 records, got 2\n--- FAIL: TestY\n"))
}
