package svm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadDataset(t *testing.T) {
	in := "1 1:0.5 3:-2\n-1 2:1e-3\t4:7\r\n+1\n2.5 10:0.25 "
	d, err := ReadDataset(strings.NewReader(in))
	require.NoError(t, err)
	require.Equal(t, []float64{1, -1, 1, 2.5}, d.Y)
	require.Equal(t, 10, d.MaxIndex)
	require.Equal(t, []Node{{1, 0.5}, {3, -2}}, d.X[0])
	require.Equal(t, []Node{{2, 1e-3}, {4, 7}}, d.X[1])
	require.Empty(t, d.X[2])
	require.Equal(t, []Node{{10, 0.25}}, d.X[3])
	// Rows do not alias: appending to one leaves the next intact.
	_ = append(d.X[0], Node{9, 9})
	require.Equal(t, Node{2, 1e-3}, d.X[1][0])
}

func TestReadDatasetErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"1 1:1\nx 2:1\n", "input:2: bad label"},
		{"1 1:1\n1 2:1 2:3\n", "input:2: feature index 2 not greater than previous 2"},
		// a blank line is LIBSVM's "Wrong input format": skipping it would shift every
		// later prediction against its input line
		{"1 1:1\n\n1 2:1\n", "input:2: empty line"},
		{"1 1:1\n-1 2:1\n \t\r\n", "input:3: empty line"},
		{"1 3:1 2:1\n", "input:1: feature index 2 not greater"},
		{"1 0:1 0:2\n", "input:1: feature index 0 not greater than previous 0"},
		{"1 -1:1\n", "input:1: bad feature index"},
		{"1 a:1\n", "input:1: bad feature index"},
		{"1 1:\n", "input:1: bad feature value"},
		{"1 1:abc\n", "input:1: bad feature value"},
		{"1 1\n", "input:1: bad feature \"1\""},
		{"1 :1\n", "input:1: bad feature"},
		{"1 99999999999:1\n", "input:1: bad feature index"},
	}
	for _, c := range cases {
		_, err := ReadDataset(strings.NewReader(c.in))
		require.Error(t, err, c.in)
		require.Contains(t, err.Error(), c.want, c.in)
		require.True(t, strings.HasPrefix(err.Error(), "svm: "), err.Error())
	}
}

func TestParseFloatMatchesStrconv(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1", "0.5", "+0.25", "123456789012345", "0.000001", ".5", "5.",
		"1e5", "1E-3", "-2.5e+10", "3.14159265358979", "0.1", "0.3", "12345.6789", "nan", "inf", "-Inf"} {
		got, err := parseFloat([]byte(s))
		require.NoError(t, err, s)
		want, _ := stdParse(s)
		if want != want {
			require.True(t, got != got, s)
			continue
		}
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "-", "+", ".", "-.", "1..2", "1-", "abc", "1e"} {
		_, err := parseFloat([]byte(s))
		require.Error(t, err, s)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	d := loadTestData(t, "heart_scale")
	var buf bytes.Buffer
	require.NoError(t, WriteDataset(&buf, d))
	d2, err := ReadDataset(&buf)
	require.NoError(t, err)
	require.Equal(t, d.Y, d2.Y)
	require.Equal(t, d.X, d2.X)
	require.Equal(t, 270, d.Len())
	require.Equal(t, 13, d.MaxIndex)
}

// FuzzReadDataset checks that the reader never panics and that what it
// accepts survives a write/read round trip.
func FuzzReadDataset(f *testing.F) {
	for _, s := range []string{"1 1:0.5 3:-2\n", "\n\n-1 2:1e-3\t4:7\r\n", "+1\n", "1 1:1 1:2", "x", "1 2:nan 3:inf",
		"1 1:0.1 2:0.2 3:0.3\n-1 5:5\n\n", "1e300 7:-1e-300"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ReadDataset(bytes.NewReader(b))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "svm: input:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for i, row := range d.X {
			for k := range row {
				if row[k].Index <= 0 || (k > 0 && row[k].Index <= row[k-1].Index) || int(row[k].Index) > d.MaxIndex {
					t.Fatalf("row %d: bad indices %v", i, row)
				}
			}
		}
		var buf bytes.Buffer
		if err := WriteDataset(&buf, d); err != nil {
			t.Fatal(err)
		}
		d2, err := ReadDataset(&buf)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if len(d2.Y) != len(d.Y) {
			t.Fatalf("round trip: %d rows, want %d", len(d2.Y), len(d.Y))
		}
	})
}

func stdParse(s string) (float64, error) { return strconvParse(s) }
