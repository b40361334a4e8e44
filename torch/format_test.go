package torch

import "testing"

func TestFormatBytes(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {512, "512 B"}, {1023, "1023 B"}, {1536, "1.50 KiB"}, {12 << 20, "12.0 MiB"},
		{5 << 29, "2.50 GiB"}, {3 << 40, "3.00 TiB"}, {-1536, "-1.50 KiB"}, {-(3 << 20), "-3.0 MiB"},
	} {
		if got := FormatBytes(c.n); got != c.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
