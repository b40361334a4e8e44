package torch

import "fmt"

// FormatBytes writes a byte count (as MemStats and Tensor.NBytes report them) with a
// binary unit: "512 B", "1.50 KiB", "37.2 MiB", "1.25 GiB", "4.00 TiB". Negative counts (a change,
// such as memory freed) keep their sign.
func FormatBytes(n int64) string {
	const k = 1024
	a := n
	if a < 0 {
		a = -a
	}
	f := float64(n)
	switch {
	case a < k:
		return fmt.Sprintf("%d B", n)
	case a < k*k:
		return fmt.Sprintf("%.2f KiB", f/k)
	case a < k*k*k:
		return fmt.Sprintf("%.1f MiB", f/(k*k))
	case a < k*k*k*k:
		return fmt.Sprintf("%.2f GiB", f/(k*k*k))
	}
	return fmt.Sprintf("%.2f TiB", f/(k*k*k*k))
}
