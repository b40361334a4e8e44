package cgo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingShimMessage: when the shim is nowhere to be found, the error says what to
// run and lists where it looked.
func TestMissingShimMessage(t *testing.T) {
	dir := t.TempDir()
	bogus := filepath.Join(dir, LibName)
	err := loadFrom([]string{bogus})
	if err == nil {
		t.Fatal("loading a missing shim succeeded")
	}
	for _, want := range []string{"make shim", "LIBTORCH", "BLOCKLLM_SHIM", bogus + ": not found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	// a file that is not a shared library is reported with dlopen's reason
	if err := os.WriteFile(bogus, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = loadFrom([]string{bogus})
	if err == nil || !strings.Contains(err.Error(), bogus+": ") || strings.Contains(err.Error(), "not found") {
		t.Errorf("want dlopen's reason for %s, got %v", bogus, err)
	}
}

// TestCandidatesOrder: $BLOCKLLM_SHIM first, then the loader path, then beside the
// executable, then the source tree.
func TestCandidatesOrder(t *testing.T) {
	t.Setenv("BLOCKLLM_SHIM", "/x/custom.so")
	c := candidates()
	if len(c) < 3 || c[0] != "/x/custom.so" || c[1] != LibName {
		t.Fatalf("unexpected order %v", c)
	}
	if !strings.HasSuffix(c[len(c)-1], filepath.Join("build", "lib", LibName)) {
		t.Errorf("last candidate should be the source tree's build/lib: %v", c)
	}
}
