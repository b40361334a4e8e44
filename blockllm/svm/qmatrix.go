package svm

// qMatrix is LIBSVM's QMatrix: columns of the dual's Hessian Q in float32,
// its diagonal, and the row/column swaps used by shrinking.
type qMatrix interface {
	// column returns Q[0:n][i]; the slice stays valid until the column
	// after next is requested (two buffers, as in LIBSVM's SVR_Q) or a swap.
	column(i, n int) []float32
	// diag returns Q_ii, permuted along with swap.
	diag() []float64
	swap(i, j int)
	// kernelEvals counts the kernel entries computed so far.
	kernelEvals() int64
	// workers returns the goroutine pool (nil for one thread) and the thread count.
	workers() (*workerPool, int)
	close()
}

func (m *kernelMatrix) diag() []float64             { return m.qd }
func (m *kernelMatrix) kernelEvals() int64          { return m.evals.Load() }
func (m *kernelMatrix) workers() (*workerPool, int) { return m.pool, m.threads }

// svrQ is LIBSVM's SVR_Q: the 2l×2l matrix [K -K; -K K] of the regression
// duals, computed from cached columns of K (length l, never swapped) and
// reordered into one of two alternating buffers.
type svrQ struct {
	km    *kernelMatrix
	l     int
	sign  []int8
	index []int32
	qd    []float64
	buf   [2][]float32
	next  int
}

func newSVRQ(x [][]Node, maxIndex int, k Kernel, cacheBytes int64, threads int) *svrQ {
	l := len(x)
	ones := make([]int8, l)
	for i := range ones {
		ones[i] = 1
	}
	km := newKernelMatrix(x, maxIndex, ones, k, cacheBytes, threads)
	q := &svrQ{km: km, l: l, sign: make([]int8, 2*l), index: make([]int32, 2*l), qd: make([]float64, 2*l)}
	for i := 0; i < l; i++ {
		q.sign[i], q.sign[i+l] = 1, -1
		q.index[i], q.index[i+l] = int32(i), int32(i)
		q.qd[i], q.qd[i+l] = km.qd[i], km.qd[i]
	}
	q.buf[0] = make([]float32, 2*l)
	q.buf[1] = make([]float32, 2*l)
	return q
}

func (q *svrQ) column(i, n int) []float32 {
	data := q.km.column(int(q.index[i]), q.l)
	buf := q.buf[q.next]
	q.next = 1 - q.next
	si := float32(q.sign[i])
	reorder := func(lo, hi int) {
		sign, index := q.sign[lo:hi], q.index[lo:hi]
		out := buf[lo:hi]
		for j := range out {
			out[j] = si * float32(sign[j]) * data[index[j]]
		}
	}
	if q.km.pool != nil && n >= 4*parallelMinRows {
		q.km.pool.run(n, max(parallelMinRows, n/(4*q.km.threads)), func(t, lo, hi int) { reorder(lo, hi) })
	} else {
		reorder(0, n)
	}
	return buf
}

func (q *svrQ) diag() []float64 { return q.qd }

func (q *svrQ) swap(i, j int) {
	q.sign[i], q.sign[j] = q.sign[j], q.sign[i]
	q.index[i], q.index[j] = q.index[j], q.index[i]
	q.qd[i], q.qd[j] = q.qd[j], q.qd[i]
}

func (q *svrQ) kernelEvals() int64          { return q.km.evals.Load() }
func (q *svrQ) workers() (*workerPool, int) { return q.km.pool, q.km.threads }
func (q *svrQ) close()                      { q.km.close() }

// denseQ is a dense symmetric matrix as a qMatrix (float32 columns, rows
// permuted by swap), so that general quadratics run in the LIBSVM solver.
type denseQ struct {
	n    int
	data []float64 // row-major, original order
	perm []int     // position -> original index
	qd   []float64
	buf  [2][]float32
	next int
	cols int64
}

func newDenseQ(q *DenseQuadratic) *denseQ {
	d := &denseQ{n: q.N, data: q.Data, perm: make([]int, q.N), qd: make([]float64, q.N)}
	for i := range d.perm {
		d.perm[i] = i
		d.qd[i] = float64(float32(q.Data[i*q.N+i]))
	}
	d.buf[0] = make([]float32, q.N)
	d.buf[1] = make([]float32, q.N)
	return d
}

func (d *denseQ) column(i, n int) []float32 {
	buf := d.buf[d.next]
	d.next = 1 - d.next
	row := d.data[d.perm[i]*d.n:]
	for j := 0; j < n; j++ {
		buf[j] = float32(row[d.perm[j]])
	}
	d.cols += int64(n)
	return buf
}

func (d *denseQ) diag() []float64 { return d.qd }

func (d *denseQ) swap(i, j int) {
	d.perm[i], d.perm[j] = d.perm[j], d.perm[i]
	d.qd[i], d.qd[j] = d.qd[j], d.qd[i]
}

func (d *denseQ) kernelEvals() int64          { return d.cols }
func (d *denseQ) workers() (*workerPool, int) { return nil, 1 }
func (d *denseQ) close()                      {}
