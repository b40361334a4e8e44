package svm

import (
	"math"
	"math/rand/v2"
	"time"
)

// Working-set rules inside the LIBSVM solver. In the variables x_t = y_t
// alpha_t the dual is min f(x) with g_t = y_t G_t, sum x = const (per class
// for Solver_NU) and box bounds; I_up (x_t can increase) holds y = +1 below
// C and y = -1 above 0, I_low (x_t can decrease) the others that are not at
// the opposite bound. Every rule stops, like WSS2, when the maximal
// violation max_{I_low} g - min_{I_up} g on the active set is below eps,
// and then LIBSVM's unshrinking and final check apply unchanged.

// ruleState holds the chosen working set and the rules' scratch space.
type ruleState struct {
	wi, wj int // pair: x_wi increases, x_wj decreases
	// GS-1 direction: active positions, x-space amounts, and whether the
	// coordinate is moved to its bound.
	dir    bool
	dIdx   []int
	dVal   []float64
	dHit   []bool
	w      []float64 // Q times the direction (alpha space) on the active set
	rng    *rand.Rand
	caps   []capItem
	hd, hu [2]idxHeap
	gx     []float64 // g = y*G on the active set (GS-1 heaps)
}

func (r *ruleState) init(s *smoSolver) {
	if s.rule == Random {
		r.rng = rand.New(rand.NewPCG(s.seed, 0x5851f42d4c957f2d))
	}
}

// group returns the coordinate's constraint group: its class for
// Solver_NU, else 0.
func (s *smoSolver) group(t int) int {
	if s.nu && s.y[t] < 0 {
		return 1
	}
	return 0
}

func (s *smoSolver) canUp(t int) bool {
	if s.y[t] > 0 {
		return !s.isUpper(t)
	}
	return !s.isLower(t)
}

func (s *smoSolver) canDown(t int) bool {
	if s.y[t] > 0 {
		return !s.isLower(t)
	}
	return !s.isUpper(t)
}

// capUp and capDown are how far x_t can increase or decrease.
func (s *smoSolver) capUp(t int) float64 {
	if s.y[t] > 0 {
		return s.getC(t) - s.alpha[t]
	}
	return s.alpha[t]
}

func (s *smoSolver) capDown(t int) float64 {
	if s.y[t] > 0 {
		return s.alpha[t]
	}
	return s.getC(t) - s.alpha[t]
}

// selectStep chooses the next working set with s.rule; false when the
// active set is optimal to eps.
func (s *smoSolver) selectStep() bool {
	s.rs.dir = false
	var ok bool
	switch s.rule {
	case WSS2:
		if s.nu {
			s.rs.wi, s.rs.wj, ok = s.selectWorkingSetNU()
		} else {
			s.rs.wi, s.rs.wj, ok = s.selectWorkingSet()
		}
	case GSS:
		ok = s.selectMVP()
	case GSQ:
		ok = s.selectGSQ()
	case Random:
		ok = s.selectRandom()
	case GS1:
		ok = s.selectGS1()
	}
	return ok
}

// takeStep moves along the chosen working set.
func (s *smoSolver) takeStep() {
	switch {
	case s.rs.dir:
		s.directionStep()
	case s.rs.wi == s.rs.wj:
		// a random "pair" of one coordinate: nothing moves
	case s.fixed:
		s.fixedPairStep(s.rs.wi, s.rs.wj)
	default:
		s.update(s.rs.wi, s.rs.wj)
	}
}

// violations returns, per group, min g over I_up and max g over I_low with
// LIBSVM's tie rule (the last index attaining the extreme).
func (s *smoSolver) violations() (gminUp, gmaxDown [2]float64, iUp, iDown [2]int) {
	for k := 0; k < 2; k++ {
		gminUp[k], gmaxDown[k] = math.Inf(1), math.Inf(-1)
		iUp[k], iDown[k] = -1, -1
	}
	for t := 0; t < s.activeSize; t++ {
		k := s.group(t)
		g := float64(s.y[t]) * s.G[t]
		if s.canUp(t) && g <= gminUp[k] {
			gminUp[k], iUp[k] = g, t
		}
		if s.canDown(t) && g >= gmaxDown[k] {
			gmaxDown[k], iDown[k] = g, t
		}
	}
	return
}

// setGap records the largest group violation and reports whether it is at
// least eps.
func (s *smoSolver) setGap(gminUp, gmaxDown [2]float64) bool {
	gap := math.Inf(-1)
	for k := 0; k < 2; k++ {
		if iv := gmaxDown[k] - gminUp[k]; !math.IsNaN(iv) && iv > gap {
			gap = iv
		}
	}
	s.gap = gap
	return gap >= s.eps
}

// selectMVP is the maximal violating pair (Gauss-Southwell-s, LIBSVM's
// first-order WSS1): within the group with the largest violation,
// argmin g over I_up and argmax g over I_low.
func (s *smoSolver) selectMVP() bool {
	lo, hi, iu, id := s.violations()
	if !s.setGap(lo, hi) {
		return false
	}
	k := 0
	if s.nu && hi[1]-lo[1] > hi[0]-lo[0] {
		k = 1
	}
	s.rs.wi, s.rs.wj = iu[k], id[k]
	return true
}

// selectRandom draws a uniformly random pair of distinct active coordinates
// (of the same class for Solver_NU) and orders it so that mass moves from
// the larger g to the smaller; a pair that cannot move wastes the iteration.
func (s *smoSolver) selectRandom() bool {
	lo, hi, _, _ := s.violations()
	if !s.setGap(lo, hi) {
		return false
	}
	as := s.activeSize
	rng := s.rs.rng
	a := rng.IntN(as)
	var b int
	if !s.nu {
		if as < 2 {
			s.rs.wi, s.rs.wj = a, a
			return true
		}
		b = rng.IntN(as - 1)
		if b >= a {
			b++
		}
	} else {
		n := 0
		for t := 0; t < as; t++ {
			if s.y[t] == s.y[a] && t != a {
				n++
			}
		}
		if n == 0 {
			s.rs.wi, s.rs.wj = a, a
			return true
		}
		k := rng.IntN(n)
		for t := 0; t < as; t++ {
			if s.y[t] == s.y[a] && t != a {
				if k == 0 {
					b = t
					break
				}
				k--
			}
		}
	}
	ga, gb := float64(s.y[a])*s.G[a], float64(s.y[b])*s.G[b]
	if ga < gb {
		a, b = b, a
	}
	// a decreases, b increases
	s.rs.wi, s.rs.wj = b, a
	return true
}

// selectGSQ picks the pair maximising the bound-clipped decrease of the 1/L
// model, h(D, c) = D t - 2L t^2 with t = min(c, D/(4L)), D = g_j - g_i and c
// the smaller capacity, by sweeping capacities in decreasing order (h grows
// with D and with c): O(n log n).
func (s *smoSolver) selectGSQ() bool {
	lo, hi, _, _ := s.violations()
	if !s.setGap(lo, hi) {
		return false
	}
	bestV, bi, bj := -1.0, -1, -1
	L4 := 4 * s.L
	for k := 0; k < 2; k++ {
		if !(hi[k] > lo[k]) {
			continue
		}
		// Within one capacity level only the largest g that can decrease
		// and the smallest that can increase matter, and every coordinate
		// at a bound has capacity exactly its C: those are folded into at
		// most four items, so that the heap holds little more than the free
		// coordinates.
		items := s.rs.caps[:0]
		var full [2][2]capItem // [class][down?]
		for c := range full {
			full[c][0].idx, full[c][1].idx = -1, -1
		}
		add := func(it capItem, t int) {
			if it.c != s.getC(t) {
				items = append(items, it)
				return
			}
			c, d := 0, 0
			if s.y[t] < 0 {
				c = 1
			}
			if it.down {
				d = 1
			}
			b := &full[c][d]
			if b.idx < 0 || (it.down && it.g > b.g) || (!it.down && it.g < b.g) {
				*b = it
			}
		}
		for t := 0; t < s.activeSize; t++ {
			if s.group(t) != k {
				continue
			}
			g := float64(s.y[t]) * s.G[t]
			if s.canDown(t) && g > lo[k] {
				add(capItem{c: s.capDown(t), g: g, idx: int32(t), down: true}, t)
			}
			if s.canUp(t) && g < hi[k] {
				add(capItem{c: s.capUp(t), g: g, idx: int32(t)}, t)
			}
		}
		for c := range full {
			for d := range full[c] {
				if full[c][d].idx >= 0 {
					items = append(items, full[c][d])
				}
			}
		}
		s.rs.caps = items
		// Sweep capacities in decreasing order off a max-heap, and stop once
		// no smaller capacity can beat the best: with D* the group's
		// largest violation, a pair of capacity c decreases the model by at
		// most D* c - 2L c^2 below c = D*/(4L), which shrinks with c.
		heapifyCaps(items)
		Dstar := hi[k] - lo[k]
		gmax, gmin := math.Inf(-1), math.Inf(1)
		imax, imin := -1, -1
		for len(items) > 0 {
			c := items[0].c
			if bound := Dstar*math.Min(c, Dstar/L4) - 2*s.L*math.Pow(math.Min(c, Dstar/L4), 2); bound <= bestV {
				break
			}
			for len(items) > 0 && items[0].c == c {
				var it capItem
				it, items = popCap(items)
				if it.down {
					if it.g > gmax {
						gmax, imax = it.g, int(it.idx)
					}
				} else if it.g < gmin {
					gmin, imin = it.g, int(it.idx)
				}
			}
			if imax < 0 || imin < 0 || imax == imin {
				continue
			}
			D := gmax - gmin
			if D <= 0 {
				continue
			}
			t := math.Min(c, D/L4)
			if v := D*t - 2*s.L*t*t; v > bestV {
				bestV, bi, bj = v, imin, imax
			}
		}
	}
	if bi < 0 {
		// Only zero-capacity moves are left (cannot happen when the gap is
		// positive, since then some pair has positive capacity); fall back
		// to the maximal violating pair.
		return s.selectMVP()
	}
	s.rs.wi, s.rs.wj = bi, bj
	return true
}

// heapifyCaps orders items as a binary max-heap on capacity.
func heapifyCaps(items []capItem) {
	for k := len(items)/2 - 1; k >= 0; k-- {
		siftCap(items, k)
	}
}

func siftCap(items []capItem, k int) {
	n := len(items)
	for {
		c := 2*k + 1
		if c >= n {
			return
		}
		if c+1 < n && items[c+1].c > items[c].c {
			c++
		}
		if !(items[c].c > items[k].c) {
			return
		}
		items[c], items[k] = items[k], items[c]
		k = c
	}
}

// popCap removes the item of largest capacity.
func popCap(items []capItem) (capItem, []capItem) {
	top := items[0]
	n := len(items) - 1
	items[0] = items[n]
	items = items[:n]
	siftCap(items, 0)
	return top, items
}

// fixedPairStep moves x_i up and x_j down by t = min((g_j - g_i)/(4L),
// capacities): the minimiser of the 1/L model along the pair.
func (s *smoSolver) fixedPairStep(i, j int) {
	if i < 0 || j < 0 || i == j {
		return
	}
	gi, gj := float64(s.y[i])*s.G[i], float64(s.y[j])*s.G[j]
	D := gj - gi
	if !(D > 0) {
		return
	}
	ci, cj := s.capUp(i), s.capDown(j)
	t := math.Min(D/(4*s.L), math.Min(ci, cj))
	if !(t > 0) {
		return
	}
	as := s.activeSize
	Qi := s.Q.column(i, as)
	Qj := s.Q.column(j, as)
	oldAi, oldAj := s.alpha[i], s.alpha[j]
	if t == ci {
		s.alpha[i] = boundFor(s.y[i] > 0, s.getC(i))
	} else {
		s.alpha[i] += float64(s.y[i]) * t
	}
	if t == cj {
		s.alpha[j] = boundFor(s.y[j] < 0, s.getC(j))
	} else {
		s.alpha[j] -= float64(s.y[j]) * t
	}
	s.applyPair(i, j, Qi, Qj, oldAi, oldAj)
}

// boundFor returns C when upper, else 0.
func boundFor(upper bool, C float64) float64 {
	if upper {
		return C
	}
	return 0
}

// selectGS1 builds the GS-1 direction on the active set: the d minimising
// g.d + (L/2)||d||_1^2 under the equality constraint(s) and the bounds. It
// walks, per group, the decreasable coordinates by g descending and the
// increasable ones by g ascending (binary heaps), moving mass from the
// current largest to the current smallest g, each exhausted coordinate to its
// bound, while the marginal gain g_i - g_j exceeds 4L times the mass moved;
// with two groups (Solver_NU) the group with the larger current gain moves
// first. At most one coordinate per side and group moves partially. It costs
// O(n + k log n) for k moved coordinates.
func (s *smoSolver) selectGS1() bool {
	lo, hi, _, _ := s.violations()
	if !s.setGap(lo, hi) {
		return false
	}
	rs := &s.rs
	as := s.activeSize
	if cap(rs.gx) < s.l {
		rs.gx = make([]float64, s.l)
	}
	gx := rs.gx[:as]
	for t := range gx {
		gx[t] = float64(s.y[t]) * s.G[t]
	}
	rs.dIdx, rs.dVal, rs.dHit = rs.dIdx[:0], rs.dVal[:0], rs.dHit[:0]
	type side struct {
		i, j           int     // current decreasing / increasing coordinate
		capI, capJ     float64 // their capacities
		movedI, movedJ float64 // mass moved so far on each
		live           bool
	}
	var sd [2]side
	for k := 0; k < 2; k++ {
		rs.hd[k].reset(gx, -1)
		rs.hu[k].reset(gx, 1)
	}
	for t := 0; t < as; t++ {
		k := s.group(t)
		if s.canDown(t) && gx[t] > lo[k] {
			rs.hd[k].data = append(rs.hd[k].data, int32(t))
		}
		if s.canUp(t) && gx[t] < hi[k] {
			rs.hu[k].data = append(rs.hu[k].data, int32(t))
		}
	}
	for k := 0; k < 2; k++ {
		rs.hd[k].init()
		rs.hu[k].init()
		sd[k].i, sd[k].j = rs.hd[k].pop(), rs.hu[k].pop()
		sd[k].live = sd[k].i >= 0 && sd[k].j >= 0
		if sd[k].live {
			sd[k].capI, sd[k].capJ = s.capDown(sd[k].i), s.capUp(sd[k].j)
		}
	}
	flush := func(t int, v float64, hit bool) {
		if v != 0 {
			rs.dIdx = append(rs.dIdx, t)
			rs.dVal = append(rs.dVal, v)
			rs.dHit = append(rs.dHit, hit)
		}
	}
	L4 := 4 * s.L
	m := 0.0
	for {
		k, gain := -1, 0.0
		for q := 0; q < 2; q++ {
			if sd[q].live && sd[q].i != sd[q].j {
				if gq := gx[sd[q].i] - gx[sd[q].j]; k < 0 || gq > gain {
					k, gain = q, gq
				}
			}
		}
		if k < 0 || gain <= L4*m {
			break
		}
		c := &sd[k]
		room := (gain - L4*m) / L4
		t := math.Min(room, math.Min(c.capI-c.movedI, c.capJ-c.movedJ))
		c.movedI += t
		c.movedJ += t
		m += t
		if t == room {
			break
		}
		if c.movedI >= c.capI {
			flush(c.i, -c.capI, true)
			c.movedI = 0
			if c.i = rs.hd[k].pop(); c.i < 0 {
				c.live = false
			} else {
				c.capI = s.capDown(c.i)
			}
		}
		if c.movedJ >= c.capJ {
			flush(c.j, c.capJ, true)
			c.movedJ = 0
			if c.j = rs.hu[k].pop(); c.j < 0 {
				c.live = false
			} else {
				c.capJ = s.capUp(c.j)
			}
		}
	}
	for k := 0; k < 2; k++ {
		if sd[k].i >= 0 {
			flush(sd[k].i, -sd[k].movedI, false)
		}
		if sd[k].j >= 0 {
			flush(sd[k].j, sd[k].movedJ, false)
		}
	}
	if len(rs.dIdx) == 0 {
		// Nothing fits the model (cannot happen with a positive gap); take
		// the maximal violating pair instead.
		return s.selectMVP()
	}
	rs.dir = true
	return true
}

// directionStep applies the GS-1 direction: as built with fixed steps, or
// scaled by the exact minimiser of the quadratic on its feasible range.
// The gradient moves by t times Q d, one column per moved coordinate.
func (s *smoSolver) directionStep() {
	rs := &s.rs
	as := s.activeSize
	if cap(rs.w) < s.l {
		rs.w = make([]float64, s.l)
	}
	w := rs.w[:as]
	for k := range w {
		w[k] = 0
	}
	for k, t := range rs.dIdx {
		da := float64(s.y[t]) * rs.dVal[k]
		col := s.Q.column(t, as)
		if s.pool != nil && as >= parallelMinActive {
			s.pool.run(as, (as+2*s.threads-1)/(2*s.threads), func(_, lo, hi int) {
				axpy32(w[lo:hi], col[lo:hi], da)
			})
		} else {
			axpy32(w, col, da)
		}
	}
	slope, curv := 0.0, 0.0
	tmax, kmax := math.Inf(1), -1
	for k, t := range rs.dIdx {
		da := float64(s.y[t]) * rs.dVal[k]
		slope += s.G[t] * da
		curv += da * w[t]
		var c float64
		if rs.dVal[k] > 0 {
			c = s.capUp(t) / rs.dVal[k]
		} else {
			c = s.capDown(t) / -rs.dVal[k]
		}
		if c < tmax {
			tmax, kmax = c, k
		}
	}
	step := 1.0
	if !s.fixed {
		if !(slope < 0) {
			return
		}
		if curv > 0 {
			step = math.Min(tmax, -slope/curv)
		} else {
			step = tmax
		}
	}
	if s.tracing {
		s.f += step*slope + 0.5*step*step*curv
	}
	for k, t := range rs.dIdx {
		da := float64(s.y[t]) * rs.dVal[k]
		C := s.getC(t)
		na := s.alpha[t] + step*da
		// Land exactly on the bounds the direction was built to reach.
		if (step == 1 && rs.dHit[k]) || (step == tmax && k == kmax) || na < 0 || na > C {
			na = boundFor(da > 0, C)
		}
		s.alpha[t] = na
	}
	if s.pool != nil && as >= parallelMinActive {
		s.pool.run(as, (as+2*s.threads-1)/(2*s.threads), func(_, lo, hi int) {
			G, ws := s.G[lo:hi], w[lo:hi]
			for k := range G {
				G[k] += step * ws[k]
			}
		})
	} else {
		for k := range w {
			s.G[k] += step * w[k]
		}
	}
	l := s.l
	for _, t := range rs.dIdx {
		u := s.isUpper(t)
		s.updateStatus(t)
		if u != s.isUpper(t) {
			addScaled(s.Gbar, s.Q.column(t, l), s.getC(t), u)
		}
	}
}

func axpy32(dst []float64, x []float32, a float64) {
	x = x[:len(dst)]
	for k := range dst {
		dst[k] += a * float64(x[k])
	}
}

// traceRec keeps at most maxTrace points of a run, halving the resolution
// (every other point, doubled stride) when full.
type traceRec struct {
	points []TracePoint
	stride int
}

const maxTrace = 4096

func (tr *traceRec) add(iter int, f, gap float64, kevals int64, t0 time.Time) {
	if tr.stride == 0 {
		tr.stride = 1
	}
	if iter%tr.stride != 0 {
		return
	}
	if n := len(tr.points); n > 0 && tr.points[n-1].Iter == iter {
		return
	}
	if len(tr.points) == maxTrace {
		k := 0
		for _, p := range tr.points {
			if p.Iter%(2*tr.stride) == 0 {
				tr.points[k] = p
				k++
			}
		}
		tr.points = tr.points[:k]
		tr.stride *= 2
		if iter%tr.stride != 0 {
			return
		}
	}
	tr.points = append(tr.points, TracePoint{Iter: iter, F: f, Gap: gap, KernelEvals: kevals, Time: time.Since(t0)})
}

// final records the last point whatever the stride.
func (tr *traceRec) final(iter int, f, gap float64, kevals int64, t0 time.Time) {
	if n := len(tr.points); n > 0 && tr.points[n-1].Iter == iter {
		tr.points[n-1] = TracePoint{Iter: iter, F: f, Gap: gap, KernelEvals: kevals, Time: time.Since(t0)}
		return
	}
	tr.points = append(tr.points, TracePoint{Iter: iter, F: f, Gap: gap, KernelEvals: kevals, Time: time.Since(t0)})
}
