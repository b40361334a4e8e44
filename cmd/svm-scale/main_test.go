package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const td = "../../testdata/svm/"

// A small file scaled by hand: feature 1 spans [-2, 2], feature 2 [0, 4]
// (absent counts as 0), feature 3 is constant and dropped, labels [1, 3].
func TestScaleByHand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "d")
	require.NoError(t, os.WriteFile(in, []byte("1 1:-2 2:4 3:5\n3 1:2 3:5\n2 1:1 2:1 3:5\n"), 0o644))
	var out, errb bytes.Buffer
	require.NoError(t, run([]string{"-l", "0", "-u", "1", "-y", "-1", "1", "-s", filepath.Join(dir, "r"), in}, &out, &errb))
	require.Equal(t, "-1 2:1 \n1 1:1 \n0 1:0.75 2:0.25 \n", out.String())
	r, err := os.ReadFile(filepath.Join(dir, "r"))
	require.NoError(t, err)
	require.Equal(t, "y\n-1 1\n1 3\nx\n0 1\n1 -2 2\n2 0 4\n", string(r))
	// Restoring the ranges on other data uses them, not the data's.
	in2 := filepath.Join(dir, "d2")
	require.NoError(t, os.WriteFile(in2, []byte("2 1:0 2:2\n"), 0o644))
	out.Reset()
	require.NoError(t, run([]string{"-r", filepath.Join(dir, "r"), in2}, &out, &errb))
	require.Equal(t, "0 1:0.5 2:0.5 \n", out.String())
}

func TestScaleErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("1 1:1\n\n2 1:3\n"), 0o644))
	cases := map[string][]string{
		"limits":    {"-l", "1", "-u", "0", td + "heart_scale"},
		"y limits":  {"-y", "1", "1", td + "heart_scale"},
		"both":      {"-s", "a", "-r", "b", td + "heart_scale"},
		"no file":   {},
		"two files": {td + "heart_scale", td + "synth3"},
		"option":    {"-x", "1", td + "heart_scale"},
		"number":    {"-l", "x", td + "heart_scale"},
		"missing":   {filepath.Join(dir, "nope")},
		"restore":   {"-r", filepath.Join(dir, "nope"), td + "heart_scale"},
	}
	for name, args := range cases {
		require.Error(t, run(args, &bytes.Buffer{}, &bytes.Buffer{}), name)
	}
	err := run([]string{bad}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, bad+":2: failed to read labels")
}

// libsvmScale returns Debian's svm-scale, or skips.
func libsvmScale(t *testing.T) string {
	p, err := exec.LookPath("svm-scale")
	if err != nil {
		t.Skip("LIBSVM's svm-scale not installed (apt-get install libsvm-tools): skipping the comparison")
	}
	return p
}

// Output, warnings and range files are byte-identical to LIBSVM's
// svm-scale. Option values are exact in single precision: Debian's build
// reads -l/-u/-y in single precision, LIBSVM's source (and this command) in
// double.
func TestScaleMatchesLIBSVM(t *testing.T) {
	ref := libsvmScale(t)
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	require.NoError(t, os.WriteFile(reg, []byte("0.5 1:3 3:-1.25\n-2 2:7 3:0.5\n1.75 1:-1 2:2\n3 1:0.125 2:7 4:1e-3\n"), 0o644))
	// A range file that lacks feature 4 (a warning) and has y ranges.
	partial := filepath.Join(dir, "partial")
	require.NoError(t, os.WriteFile(partial, []byte("y\n0 1\n-2 3\nx\n0 1\n1 -1 3\n2 0 7\n3 -1.25 0.5\n"), 0o644))
	cases := [][]string{
		{td + "heart_scale"},
		{"-l", "0", td + "synth3"},
		{"-l", "-0.5", "-u", "0.75", td + "synth3"},
		{"-y", "0", "1", reg},
		{"-l", "0", "-u", "1", "-y", "-1", "1", "-s", "RANGE", reg},
		{"-r", "RANGE", td + "heart_scale"},
		{"-r", partial, reg},
	}
	for _, c := range cases {
		name := strings.Join(c, " ")
		lr := filepath.Join(dir, "lrange")
		gr := filepath.Join(dir, "grange")
		largs := replace(c, "RANGE", lr)
		gargs := replace(c, "RANGE", gr)
		if c[0] == "-r" && c[1] == "RANGE" {
			largs, gargs = replace(c, "RANGE", lr), replace(c, "RANGE", lr)
		}
		var lout, lerr bytes.Buffer
		cmd := exec.Command(ref, largs...)
		cmd.Stdout, cmd.Stderr = &lout, &lerr
		require.NoError(t, cmd.Run(), name)
		var gout, gerr bytes.Buffer
		require.NoError(t, run(gargs, &gout, &gerr), name)
		require.Equal(t, lout.String(), gout.String(), name)
		require.Equal(t, lerr.String(), gerr.String(), name)
		if strings.Contains(name, "-s RANGE") {
			lb, err := os.ReadFile(lr)
			require.NoError(t, err)
			gb, err := os.ReadFile(gr)
			require.NoError(t, err)
			require.Equal(t, string(lb), string(gb), name)
		}
	}
}

func replace(args []string, old, new string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == old {
			out[i] = new
		}
	}
	return out
}
