package svm

import (
	"fmt"
	"io"
	"math"
	"time"
)

const (
	tau = 1e-12

	lowerBound = 0
	upperBound = 1
	free       = 2
)

// smoSolver is a port of LIBSVM 3.24's Solver and Solver_NU (SMO with WSS2,
// shrinking and gradient reconstruction) in LIBSVM's variables:
// min 1/2 alpha'Q alpha + p'alpha, y'alpha = const (and, for Solver_NU,
// e'alpha = const), 0 <= alpha_i <= C_i, G = Q alpha + p. Besides WSS2 it
// takes the other working-set rules and the fixed 1/L step (rules.go), all
// with the same shrinking, cache and threads.
type smoSolver struct {
	l          int
	activeSize int
	y          []int8
	G          []float64
	Gbar       []float64
	status     []int8
	alpha      []float64
	Q          qMatrix
	QD         []float64
	p          []float64
	activeSet  []int
	eps        float64
	Cp, Cn     float64
	unshrink   bool
	nu         bool // Solver_NU: pairs within one class, two equality constraints
	r          float64
	progress   io.Writer
	maxIter    int
	deadline   time.Duration
	pool       *workerPool
	threads    int
	parts      []wssPart // per-chunk WSS2 results (parallel scans)

	rule  Rule
	fixed bool    // fixed 1/L steps instead of exact ones
	L     float64 // max_i Q_ii, the 1-norm Lipschitz constant of the gradient
	seed  uint64
	rs    ruleState

	tracing bool
	f       float64 // objective, kept up to date when tracing
	gap     float64 // maximal violation on the active set at the last selection
	trace   traceRec
	t0      time.Time
}

type solutionInfo struct {
	obj        float64
	rho        float64
	r          float64 // Solver_NU's r
	upperP     float64
	upperN     float64
	iterations int
	status     Status
	trace      []TracePoint
}

func (s *smoSolver) getC(i int) float64 {
	if s.y[i] > 0 {
		return s.Cp
	}
	return s.Cn
}

func (s *smoSolver) updateStatus(i int) {
	if s.alpha[i] >= s.getC(i) {
		s.status[i] = upperBound
	} else if s.alpha[i] <= 0 {
		s.status[i] = lowerBound
	} else {
		s.status[i] = free
	}
}

func (s *smoSolver) isUpper(i int) bool { return s.status[i] == upperBound }
func (s *smoSolver) isLower(i int) bool { return s.status[i] == lowerBound }
func (s *smoSolver) isFree(i int) bool  { return s.status[i] == free }

func (s *smoSolver) info(str string) {
	if s.progress != nil {
		io.WriteString(s.progress, str)
	}
}

func (s *smoSolver) swapIndex(i, j int) {
	s.Q.swap(i, j)
	s.y[i], s.y[j] = s.y[j], s.y[i]
	s.G[i], s.G[j] = s.G[j], s.G[i]
	s.status[i], s.status[j] = s.status[j], s.status[i]
	s.alpha[i], s.alpha[j] = s.alpha[j], s.alpha[i]
	s.p[i], s.p[j] = s.p[j], s.p[i]
	s.activeSet[i], s.activeSet[j] = s.activeSet[j], s.activeSet[i]
	s.Gbar[i], s.Gbar[j] = s.Gbar[j], s.Gbar[i]
}

func (s *smoSolver) reconstructGradient() {
	l := s.l
	if s.activeSize == l {
		return
	}
	nrFree := 0
	for j := s.activeSize; j < l; j++ {
		s.G[j] = s.Gbar[j] + s.p[j]
	}
	for j := 0; j < s.activeSize; j++ {
		if s.isFree(j) {
			nrFree++
		}
	}
	if 2*nrFree < s.activeSize {
		s.info("\nWARNING: using -h 0 may be faster\n")
	}
	if nrFree*l > 2*s.activeSize*(l-s.activeSize) {
		for i := s.activeSize; i < l; i++ {
			Qi := s.Q.column(i, s.activeSize)
			gi := s.G[i]
			for j := 0; j < s.activeSize; j++ {
				if s.isFree(j) {
					gi += s.alpha[j] * float64(Qi[j])
				}
			}
			s.G[i] = gi
		}
	} else {
		for i := 0; i < s.activeSize; i++ {
			if s.isFree(i) {
				Qi := s.Q.column(i, l)
				ai := s.alpha[i]
				G := s.G[s.activeSize:l]
				Qt := Qi[s.activeSize:l]
				for j := range G {
					G[j] += ai * float64(Qt[j])
				}
			}
		}
	}
}

// solve runs the solver from alpha0 (feasible; overwritten with the
// solution, in original order). s.l, s.Q, s.QD, s.p, s.y, s.eps, s.Cp and
// s.Cn must be set.
func (s *smoSolver) solve(alpha0 []float64, shrinking bool) solutionInfo {
	l := s.l
	s.t0 = time.Now()
	s.pool, s.threads = s.Q.workers()
	s.alpha = append([]float64(nil), alpha0...)
	s.status = make([]int8, l)
	for i := 0; i < l; i++ {
		s.updateStatus(i)
	}
	s.activeSet = make([]int, l)
	for i := range s.activeSet {
		s.activeSet[i] = i
	}
	s.activeSize = l
	s.G = make([]float64, l)
	s.Gbar = make([]float64, l)
	copy(s.G, s.p)
	for i := 0; i < l; i++ {
		if !s.isLower(i) {
			Qi := s.Q.column(i, l)
			ai := s.alpha[i]
			for j := 0; j < l; j++ {
				s.G[j] += ai * float64(Qi[j])
			}
			if s.isUpper(i) {
				Ci := s.getC(i)
				for j := 0; j < l; j++ {
					s.Gbar[j] += Ci * float64(Qi[j])
				}
			}
		}
	}
	s.L = 0
	for _, q := range s.QD {
		s.L = math.Max(s.L, q)
	}
	if !(s.L > 0) {
		s.L = tau // all-zero kernel: any step is free
	}
	s.rs.init(s)
	if s.tracing {
		s.f = s.objective()
		s.trace = traceRec{}
	}
	iter := 0
	maxIter := s.maxIter
	if maxIter <= 0 {
		maxIter = 100 * l
		if l > math.MaxInt32/100 {
			maxIter = math.MaxInt32
		}
		if maxIter < 10000000 {
			maxIter = 10000000
		}
	}
	status := Converged
	counter := min(l, 1000) + 1
	for iter < maxIter {
		counter--
		if counter == 0 {
			counter = min(l, 1000)
			if shrinking {
				s.doShrinking()
			}
			s.info(".")
			if s.deadline > 0 && time.Since(s.t0) > s.deadline {
				status = TimeLimit
				break
			}
		}
		if !s.selectStep() {
			s.reconstructGradient()
			s.activeSize = l
			s.info("*")
			if !s.selectStep() {
				break
			}
			counter = 1
		}
		if s.tracing {
			s.trace.add(iter, s.f, s.gap, s.Q.kernelEvals(), s.t0)
		}
		iter++
		s.takeStep()
	}
	if s.tracing {
		s.trace.final(iter, s.f, s.gap, s.Q.kernelEvals(), s.t0)
	}
	si := solutionInfo{iterations: iter, status: status}
	if iter >= maxIter || status == TimeLimit {
		if s.activeSize < l {
			s.reconstructGradient()
			s.activeSize = l
			s.info("*")
		}
		if status != TimeLimit {
			si.status = IterationLimit // the caller warns, on LIBSVM's stderr
		}
	}
	si.rho = s.calculateRho()
	si.r = s.r
	si.obj = s.objective()
	for i := 0; i < l; i++ {
		alpha0[s.activeSet[i]] = s.alpha[i]
	}
	si.upperP = s.Cp
	si.upperN = s.Cn
	si.trace = s.trace.points
	s.info(fmt.Sprintf("\noptimization finished, #iter = %d\n", iter))
	return si
}

// objective is 1/2 alpha'(G + p) over all l variables (G must be complete
// on them, or only the active ones count).
func (s *smoSolver) objective() float64 {
	v := 0.0
	for i := 0; i < s.l; i++ {
		v += s.alpha[i] * (s.G[i] + s.p[i])
	}
	return v / 2
}

// update performs LIBSVM's two-variable analytic update on (i, j).
func (s *smoSolver) update(i, j int) {
	as := s.activeSize
	Qi := s.Q.column(i, as)
	Qj := s.Q.column(j, as)
	Ci, Cj := s.getC(i), s.getC(j)
	oldAi, oldAj := s.alpha[i], s.alpha[j]
	alpha := s.alpha
	if s.y[i] != s.y[j] {
		quad := s.QD[i] + s.QD[j] + 2*float64(Qi[j])
		if quad <= 0 {
			quad = tau
		}
		delta := (-s.G[i] - s.G[j]) / quad
		diff := alpha[i] - alpha[j]
		alpha[i] += delta
		alpha[j] += delta
		if diff > 0 {
			if alpha[j] < 0 {
				alpha[j] = 0
				alpha[i] = diff
			}
		} else {
			if alpha[i] < 0 {
				alpha[i] = 0
				alpha[j] = -diff
			}
		}
		if diff > Ci-Cj {
			if alpha[i] > Ci {
				alpha[i] = Ci
				alpha[j] = Ci - diff
			}
		} else {
			if alpha[j] > Cj {
				alpha[j] = Cj
				alpha[i] = Cj + diff
			}
		}
	} else {
		quad := s.QD[i] + s.QD[j] - 2*float64(Qi[j])
		if quad <= 0 {
			quad = tau
		}
		delta := (s.G[i] - s.G[j]) / quad
		sum := alpha[i] + alpha[j]
		alpha[i] -= delta
		alpha[j] += delta
		if sum > Ci {
			if alpha[i] > Ci {
				alpha[i] = Ci
				alpha[j] = sum - Ci
			}
		} else {
			if alpha[j] < 0 {
				alpha[j] = 0
				alpha[i] = sum
			}
		}
		if sum > Cj {
			if alpha[j] > Cj {
				alpha[j] = Cj
				alpha[i] = sum - Cj
			}
		} else {
			if alpha[i] < 0 {
				alpha[i] = 0
				alpha[j] = sum
			}
		}
	}
	s.applyPair(i, j, Qi, Qj, oldAi, oldAj)
}

// applyPair updates G, the statuses and G_bar after alpha[i] and alpha[j]
// changed from oldAi and oldAj (Qi, Qj: their columns on the active set).
func (s *smoSolver) applyPair(i, j int, Qi, Qj []float32, oldAi, oldAj float64) {
	as := s.activeSize
	dai := s.alpha[i] - oldAi
	daj := s.alpha[j] - oldAj
	if s.tracing {
		s.f += s.G[i]*dai + s.G[j]*daj + 0.5*(s.QD[i]*dai*dai+s.QD[j]*daj*daj) + float64(Qi[j])*dai*daj
	}
	if s.pool != nil && as >= parallelMinActive {
		s.pool.run(as, (as+2*s.threads-1)/(2*s.threads), func(t, lo, hi int) {
			updateG(s.G[lo:hi], Qi[lo:hi], Qj[lo:hi], dai, daj)
		})
	} else {
		updateG(s.G[:as], Qi[:as], Qj[:as], dai, daj)
	}
	ui, uj := s.isUpper(i), s.isUpper(j)
	s.updateStatus(i)
	s.updateStatus(j)
	l := s.l
	if ui != s.isUpper(i) {
		Qi = s.Q.column(i, l)
		addScaled(s.Gbar, Qi, s.getC(i), ui)
	}
	if uj != s.isUpper(j) {
		Qj = s.Q.column(j, l)
		addScaled(s.Gbar, Qj, s.getC(j), uj)
	}
}

func updateG(G []float64, Qi, Qj []float32, dai, daj float64) {
	Qi = Qi[:len(G)]
	Qj = Qj[:len(G)]
	for k := range G {
		G[k] += float64(Qi[k])*dai + float64(Qj[k])*daj
	}
}

func addScaled(dst []float64, q []float32, c float64, sub bool) {
	q = q[:len(dst)]
	if sub {
		for k := range dst {
			dst[k] -= c * float64(q[k])
		}
	} else {
		for k := range dst {
			dst[k] += c * float64(q[k])
		}
	}
}

// selectWorkingSet is LIBSVM's WSS2 (Fan, Chen and Lin 2005). ok is false
// when the maximal violation is below eps. With several threads and a large
// active set, both scans run in chunks whose results are combined in index
// order with LIBSVM's tie rules (the last maximiser wins), so the choice is
// the same as the serial scan's.
func (s *smoSolver) selectWorkingSet() (int, int, bool) {
	as := s.activeSize
	par := s.pool != nil && as >= parallelMinActive
	var parts []wssPart
	chunk := 0
	if par {
		chunk = (as + 2*s.threads - 1) / (2 * s.threads)
		parts = s.parts[:0]
		for k := 0; k*chunk < as; k++ {
			parts = append(parts, wssPart{})
		}
		s.parts = parts
	}
	Gmax, GmaxIdx := math.Inf(-1), -1
	if par {
		s.pool.run(as, chunk, func(t, lo, hi int) {
			p := &parts[lo/chunk]
			p.gmax, p.imax = s.wssFirst(lo, hi)
		})
		for _, p := range parts {
			if p.imax != -1 && p.gmax >= Gmax {
				Gmax, GmaxIdx = p.gmax, p.imax
			}
		}
	} else {
		Gmax, GmaxIdx = s.wssFirst(0, as)
	}
	var Qi []float32
	if GmaxIdx != -1 {
		Qi = s.Q.column(GmaxIdx, as)[:as]
	}
	Gmax2, GminIdx, objDiffMin := math.Inf(-1), -1, math.Inf(1)
	if par {
		s.pool.run(as, chunk, func(t, lo, hi int) {
			p := &parts[lo/chunk]
			p.gmax2, p.jmin, p.odmin = s.wssSecond(lo, hi, GmaxIdx, Gmax, Qi)
		})
		for _, p := range parts {
			Gmax2 = math.Max(Gmax2, p.gmax2)
			if p.jmin != -1 && p.odmin <= objDiffMin {
				GminIdx, objDiffMin = p.jmin, p.odmin
			}
		}
	} else {
		Gmax2, GminIdx, _ = s.wssSecond(0, as, GmaxIdx, Gmax, Qi)
	}
	s.gap = Gmax + Gmax2
	if Gmax+Gmax2 < s.eps || GminIdx == -1 {
		return 0, 0, false
	}
	return GmaxIdx, GminIdx, true
}

// selectWorkingSetNU is Solver_NU's WSS2: i is the first-order choice of
// j's class (ip for y = +1, in for y = -1), j the second-order choice over
// both classes.
func (s *smoSolver) selectWorkingSetNU() (int, int, bool) {
	as := s.activeSize
	Gmaxp, Gmaxp2, ip := math.Inf(-1), math.Inf(-1), -1
	Gmaxn, Gmaxn2, in := math.Inf(-1), math.Inf(-1), -1
	GminIdx, objDiffMin := -1, math.Inf(1)
	y, G := s.y[:as], s.G[:as]
	for t := range y {
		if y[t] == 1 {
			if !s.isUpper(t) && -G[t] >= Gmaxp {
				Gmaxp = -G[t]
				ip = t
			}
		} else if !s.isLower(t) && G[t] >= Gmaxn {
			Gmaxn = G[t]
			in = t
		}
	}
	var Qip, Qin []float32
	if ip != -1 {
		Qip = s.Q.column(ip, as)
	}
	if in != -1 {
		Qin = s.Q.column(in, as)
	}
	QD := s.QD
	for j := range y {
		if y[j] == 1 {
			if !s.isLower(j) {
				gd := Gmaxp + G[j]
				if G[j] >= Gmaxp2 {
					Gmaxp2 = G[j]
				}
				if gd > 0 {
					quad := QD[ip] + QD[j] - 2*float64(Qip[j])
					var od float64
					if quad > 0 {
						od = -(gd * gd) / quad
					} else {
						od = -(gd * gd) / tau
					}
					if od <= objDiffMin {
						GminIdx = j
						objDiffMin = od
					}
				}
			}
		} else if !s.isUpper(j) {
			gd := Gmaxn - G[j]
			if -G[j] >= Gmaxn2 {
				Gmaxn2 = -G[j]
			}
			if gd > 0 {
				quad := QD[in] + QD[j] - 2*float64(Qin[j])
				var od float64
				if quad > 0 {
					od = -(gd * gd) / quad
				} else {
					od = -(gd * gd) / tau
				}
				if od <= objDiffMin {
					GminIdx = j
					objDiffMin = od
				}
			}
		}
	}
	s.gap = cmax(Gmaxp+Gmaxp2, Gmaxn+Gmaxn2)
	if cmax(Gmaxp+Gmaxp2, Gmaxn+Gmaxn2) < s.eps || GminIdx == -1 {
		return 0, 0, false
	}
	if y[GminIdx] == 1 {
		return ip, GminIdx, true
	}
	return in, GminIdx, true
}

// parallelMinActive is the smallest active set whose WSS2 scans and gradient
// updates are split across goroutines.
var parallelMinActive = 8192

type wssPart struct {
	gmax, gmax2, odmin float64
	imax, jmin         int
}

// wssFirst returns max over t in [lo, hi) of -y_t G_t among t in I_up and
// the last index attaining it (-1 if none).
func (s *smoSolver) wssFirst(lo, hi int) (float64, int) {
	Gmax, idx := math.Inf(-1), -1
	y := s.y[lo:hi]
	G := s.G[lo:hi]
	st := s.status[lo:hi]
	for t := range y {
		if y[t] == 1 {
			if st[t] != upperBound && -G[t] >= Gmax {
				Gmax = -G[t]
				idx = lo + t
			}
		} else {
			if st[t] != lowerBound && G[t] >= Gmax {
				Gmax = G[t]
				idx = lo + t
			}
		}
	}
	return Gmax, idx
}

// wssSecond scans j in [lo, hi) for LIBSVM's second-order choice given i
// (-1 for none) and Gmax; it returns Gmax2, the last minimiser of the
// objective decrease and that minimum.
func (s *smoSolver) wssSecond(lo, hi, i int, Gmax float64, Qi []float32) (float64, int, float64) {
	Gmax2, GminIdx, objDiffMin := math.Inf(-1), -1, math.Inf(1)
	y := s.y[lo:hi]
	G := s.G[lo:hi]
	st := s.status[lo:hi]
	if i == -1 {
		for j := range y {
			if y[j] == 1 {
				if st[j] != lowerBound && G[j] >= Gmax2 {
					Gmax2 = G[j]
				}
			} else if st[j] != upperBound && -G[j] >= Gmax2 {
				Gmax2 = -G[j]
			}
		}
		return Gmax2, -1, objDiffMin
	}
	Qb := Qi[lo:hi]
	QD := s.QD[lo:hi]
	QDi := s.QD[i]
	yi := float64(s.y[i])
	for j := range y {
		if y[j] == 1 {
			if st[j] != lowerBound {
				gd := Gmax + G[j]
				if G[j] >= Gmax2 {
					Gmax2 = G[j]
				}
				if gd > 0 {
					quad := QDi + QD[j] - 2.0*yi*float64(Qb[j])
					var od float64
					if quad > 0 {
						od = -(gd * gd) / quad
					} else {
						od = -(gd * gd) / tau
					}
					if od <= objDiffMin {
						GminIdx = lo + j
						objDiffMin = od
					}
				}
			}
		} else {
			if st[j] != upperBound {
				gd := Gmax - G[j]
				if -G[j] >= Gmax2 {
					Gmax2 = -G[j]
				}
				if gd > 0 {
					quad := QDi + QD[j] + 2.0*yi*float64(Qb[j])
					var od float64
					if quad > 0 {
						od = -(gd * gd) / quad
					} else {
						od = -(gd * gd) / tau
					}
					if od <= objDiffMin {
						GminIdx = lo + j
						objDiffMin = od
					}
				}
			}
		}
	}
	return Gmax2, GminIdx, objDiffMin
}

func (s *smoSolver) beShrunk(i int, Gmax1, Gmax2 float64) bool {
	if s.isUpper(i) {
		if s.y[i] == 1 {
			return -s.G[i] > Gmax1
		}
		return -s.G[i] > Gmax2
	} else if s.isLower(i) {
		if s.y[i] == 1 {
			return s.G[i] > Gmax2
		}
		return s.G[i] > Gmax1
	}
	return false
}

func (s *smoSolver) doShrinking() {
	if s.nu {
		s.doShrinkingNU()
		return
	}
	Gmax1 := math.Inf(-1)
	Gmax2 := math.Inf(-1)
	for i := 0; i < s.activeSize; i++ {
		if s.y[i] == 1 {
			if !s.isUpper(i) && -s.G[i] >= Gmax1 {
				Gmax1 = -s.G[i]
			}
			if !s.isLower(i) && s.G[i] >= Gmax2 {
				Gmax2 = s.G[i]
			}
		} else {
			if !s.isUpper(i) && -s.G[i] >= Gmax2 {
				Gmax2 = -s.G[i]
			}
			if !s.isLower(i) && s.G[i] >= Gmax1 {
				Gmax1 = s.G[i]
			}
		}
	}
	if !s.unshrink && Gmax1+Gmax2 <= s.eps*10 {
		s.unshrink = true
		s.reconstructGradient()
		s.activeSize = s.l
		s.info("*")
	}
	for i := 0; i < s.activeSize; i++ {
		if s.beShrunk(i, Gmax1, Gmax2) {
			s.activeSize--
			for s.activeSize > i {
				if !s.beShrunk(s.activeSize, Gmax1, Gmax2) {
					s.swapIndex(i, s.activeSize)
					break
				}
				s.activeSize--
			}
		}
	}
}

func (s *smoSolver) calculateRho() float64 {
	if s.nu {
		return s.calculateRhoNU()
	}
	nrFree := 0
	ub, lb, sumFree := math.Inf(1), math.Inf(-1), 0.0
	for i := 0; i < s.activeSize; i++ {
		yG := float64(s.y[i]) * s.G[i]
		if s.isUpper(i) {
			if s.y[i] == -1 {
				ub = cmin(ub, yG)
			} else {
				lb = cmax(lb, yG)
			}
		} else if s.isLower(i) {
			if s.y[i] == 1 {
				ub = cmin(ub, yG)
			} else {
				lb = cmax(lb, yG)
			}
		} else {
			nrFree++
			sumFree += yG
		}
	}
	if nrFree > 0 {
		return sumFree / float64(nrFree)
	}
	return (ub + lb) / 2
}

func (s *smoSolver) beShrunkNU(i int, Gmax1, Gmax2, Gmax3, Gmax4 float64) bool {
	if s.isUpper(i) {
		if s.y[i] == 1 {
			return -s.G[i] > Gmax1
		}
		return -s.G[i] > Gmax4
	} else if s.isLower(i) {
		if s.y[i] == 1 {
			return s.G[i] > Gmax2
		}
		return s.G[i] > Gmax3
	}
	return false
}

// doShrinkingNU is Solver_NU::do_shrinking.
func (s *smoSolver) doShrinkingNU() {
	Gmax1, Gmax2, Gmax3, Gmax4 := math.Inf(-1), math.Inf(-1), math.Inf(-1), math.Inf(-1)
	for i := 0; i < s.activeSize; i++ {
		if !s.isUpper(i) {
			if s.y[i] == 1 {
				if -s.G[i] > Gmax1 {
					Gmax1 = -s.G[i]
				}
			} else if -s.G[i] > Gmax4 {
				Gmax4 = -s.G[i]
			}
		}
		if !s.isLower(i) {
			if s.y[i] == 1 {
				if s.G[i] > Gmax2 {
					Gmax2 = s.G[i]
				}
			} else if s.G[i] > Gmax3 {
				Gmax3 = s.G[i]
			}
		}
	}
	if !s.unshrink && cmax(Gmax1+Gmax2, Gmax3+Gmax4) <= s.eps*10 {
		s.unshrink = true
		s.reconstructGradient()
		s.activeSize = s.l
	}
	for i := 0; i < s.activeSize; i++ {
		if s.beShrunkNU(i, Gmax1, Gmax2, Gmax3, Gmax4) {
			s.activeSize--
			for s.activeSize > i {
				if !s.beShrunkNU(s.activeSize, Gmax1, Gmax2, Gmax3, Gmax4) {
					s.swapIndex(i, s.activeSize)
					break
				}
				s.activeSize--
			}
		}
	}
}

// calculateRhoNU is Solver_NU::calculate_rho; it also sets s.r.
func (s *smoSolver) calculateRhoNU() float64 {
	nrFree1, nrFree2 := 0, 0
	ub1, ub2 := math.Inf(1), math.Inf(1)
	lb1, lb2 := math.Inf(-1), math.Inf(-1)
	sumFree1, sumFree2 := 0.0, 0.0
	for i := 0; i < s.activeSize; i++ {
		if s.y[i] == 1 {
			if s.isUpper(i) {
				lb1 = cmax(lb1, s.G[i])
			} else if s.isLower(i) {
				ub1 = cmin(ub1, s.G[i])
			} else {
				nrFree1++
				sumFree1 += s.G[i]
			}
		} else {
			if s.isUpper(i) {
				lb2 = cmax(lb2, s.G[i])
			} else if s.isLower(i) {
				ub2 = cmin(ub2, s.G[i])
			} else {
				nrFree2++
				sumFree2 += s.G[i]
			}
		}
	}
	var r1, r2 float64
	if nrFree1 > 0 {
		r1 = sumFree1 / float64(nrFree1)
	} else {
		r1 = (ub1 + lb1) / 2
	}
	if nrFree2 > 0 {
		r2 = sumFree2 / float64(nrFree2)
	} else {
		r2 = (ub2 + lb2) / 2
	}
	s.r = (r1 + r2) / 2
	return (r1 - r2) / 2
}

// cmin and cmax are LIBSVM's min and max templates ((x<y)?x:y and
// (x>y)?x:y), which differ from math.Min and math.Max on signed zeros.
func cmin(x, y float64) float64 {
	if x < y {
		return x
	}
	return y
}

func cmax(x, y float64) float64 {
	if x > y {
		return x
	}
	return y
}
