package svm

import (
	"os"
	"path/filepath"
	"testing"
)

// syntheticSparse returns l rows with nnz binary features out of dim, like a8a.
func syntheticSparse(l, dim, nnz int, seed int64) *Dataset {
	r := newRand(seed)
	d := &Dataset{MaxIndex: dim}
	for i := 0; i < l; i++ {
		seen := map[int]bool{}
		row := []Node{}
		for len(row) < nnz {
			k := 1 + r.IntN(dim)
			if !seen[k] {
				seen[k] = true
				row = append(row, Node{Index: int32(k), Value: 1})
			}
		}
		for a := 1; a < len(row); a++ {
			for b := a; b > 0 && row[b].Index < row[b-1].Index; b-- {
				row[b], row[b-1] = row[b-1], row[b]
			}
		}
		d.X = append(d.X, row)
		if r.IntN(4) == 0 {
			d.Y = append(d.Y, 1)
		} else {
			d.Y = append(d.Y, -1)
		}
	}
	return d
}

func benchColumns(b *testing.B, threads int) {
	d := syntheticSparse(20000, 123, 14, 1)
	s := make([]int8, d.Len())
	for i := range s {
		s[i] = 1
	}
	m := newKernelMatrix(d.X, d.MaxIndex, s, Kernel{Type: RBF, Gamma: 1.0 / 123}, 1<<20, threads)
	defer m.close()
	buf := make([]float32, d.Len())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.fill(i%d.Len(), buf, 0, d.Len())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(d.Len()), "ns/entry")
}

// BenchmarkKernelColumn measures RBF kernel columns of 20000 sparse rows.
func BenchmarkKernelColumn1(b *testing.B) { benchColumns(b, 1) }

// BenchmarkKernelColumn2 is BenchmarkKernelColumn1 on 2 goroutines.
func BenchmarkKernelColumn2(b *testing.B) { benchColumns(b, 2) }

// largeDataDir returns $BLOCKLLM_SVM_DATA, the directory of the large LIBSVM
// sets (a8a, w8a, a9a.t), or skips when it is unset.
func largeDataDir(tb testing.TB) string {
	d := os.Getenv("BLOCKLLM_SVM_DATA")
	if d == "" {
		tb.Skip("set BLOCKLLM_SVM_DATA to the directory of the LIBSVM data sets (a8a, w8a, a9a.t)")
	}
	return d
}

func benchTrain(b *testing.B, set string, threads int) {
	path := filepath.Join(largeDataDir(b), set)
	if _, err := os.Stat(path); err != nil {
		b.Skipf("skipping: %s not found in BLOCKLLM_SVM_DATA", path)
	}
	d, err := ReadDatasetFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := DefaultParams(d.MaxIndex)
		p.Threads = threads
		m, err := Train(d, p)
		if err != nil {
			b.Fatal(err)
		}
		st := m.Stats[0]
		b.ReportMetric(float64(st.Iterations), "iter")
		b.ReportMetric(float64(st.KernelEvals), "kernel-evals")
	}
}

// BenchmarkTrainA8a trains a8a with LIBSVM's defaults on 1 thread.
func BenchmarkTrainA8a(b *testing.B) { benchTrain(b, "a8a", 1) }

// BenchmarkTrainA8a2 trains a8a with LIBSVM's defaults on 2 threads.
func BenchmarkTrainA8a2(b *testing.B) { benchTrain(b, "a8a", 2) }

// BenchmarkTrainW8a trains w8a with LIBSVM's defaults on 1 thread.
func BenchmarkTrainW8a(b *testing.B) { benchTrain(b, "w8a", 1) }

// BenchmarkTrainW8a2 trains w8a with LIBSVM's defaults on 2 threads.
func BenchmarkTrainW8a2(b *testing.B) { benchTrain(b, "w8a", 2) }
