package course

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTestOrderPutsLastCatcherFirstThenFastest(t *testing.T) {
	tests := []string{"TestSlow", "TestFast", "TestMid", "TestAlsoFast"}
	took := map[string]time.Duration{"TestSlow": 9 * time.Second, "TestFast": time.Second, "TestMid": 3 * time.Second, "TestAlsoFast": time.Second}
	assert.Equal(t, []string{"TestFast", "TestAlsoFast", "TestMid", "TestSlow"}, testOrder(tests, took, ""), "fastest first, file order among equals")
	assert.Equal(t, []string{"TestSlow", "TestFast", "TestAlsoFast", "TestMid"}, testOrder(tests, took, "TestSlow"))
	assert.Equal(t, []string{"TestFast", "TestAlsoFast", "TestMid", "TestSlow"}, testOrder(tests, took, "TestGone"), "a catcher since renamed is no test to run")
	assert.Equal(t, []string{"TestSlow", "TestFast", "TestMid", "TestAlsoFast"}, tests, "the lesson's list is left as it was")
}

func TestCatchersSurviveFromOneCheckToTheNext(t *testing.T) {
	file := filepath.Join(t.TempDir(), "klab", "mutant-catchers.json")
	m := Mutant{Lesson: "01", Name: "find ignores the index"}
	c := loadCatchers(file)
	assert.Equal(t, "", c.get(m), "no file: no catchers")
	c.set(m, "TestRead")
	require.NoError(t, c.save())
	assert.Equal(t, "TestRead", loadCatchers(file).get(m))
	assert.Equal(t, "", loadCatchers(file).get(Mutant{Lesson: "02", Name: m.Name}), "a name is a lesson's own")

	require.NoError(t, os.WriteFile(file, []byte("{not json"), 0o644))
	assert.Equal(t, "", loadCatchers(file).get(m), "a broken file is an empty one")
	require.NoError(t, loadCatchers("").save(), "no cache folder: nothing kept, no error")
}

// TestRunEachStopsAtTheFirstFailingTestInItsOrder builds a small test
// binary whose TestB fails, TestC panics and TestD hangs.
func TestRunEachStopsAtTheFirstFailingTestInItsOrder(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module demo\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "demo_test.go"), []byte(`package demo

import (
	"testing"
	"time"
)

func TestA(t *testing.T) {}
func TestB(t *testing.T) { t.Fatal("wrong") }
func TestC(t *testing.T) { go panic("boom") ; time.Sleep(time.Second) }
func TestD(t *testing.T) { time.Sleep(time.Minute) }
`), 0o644))
	cmd := exec.Command("go", "test", "-c", "-o", "demo.test", ".")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	v := &variant{binary: filepath.Join(dir, "demo.test"), dir: dir}

	o := v.runEach([]string{"TestA"}, time.Minute)
	assert.False(t, o.Caught, "no test fails: not caught")
	o = v.runEach([]string{"TestA", "TestB", "TestD"}, time.Minute)
	assert.True(t, o.Caught)
	assert.Equal(t, "TestB", o.Test)
	assert.Equal(t, "TestB", o.By)
	assert.Less(t, o.Duration, 30*time.Second, "TestD never ran")
	o = v.runEach([]string{"TestC", "TestB"}, time.Minute)
	assert.Equal(t, "TestC", o.Test, "a panic outside the test's report is its test's")
	assert.Contains(t, o.By, "TestC (the test binary failed: panic: boom")
	o = v.runEach([]string{"TestA", "TestD"}, 2*time.Second)
	assert.Equal(t, "TestD", o.Test, "the time left is TestD's time-out")
	assert.Equal(t, "TestD (time-out)", o.By)
}
