package svm

import (
	"fmt"
	"math"
)

func sigmoidPredict(dec, A, B float64) float64 {
	fApB := dec*A + B
	if fApB >= 0 {
		return math.Exp(-fApB) / (1.0 + math.Exp(-fApB))
	}
	return 1.0 / (1 + math.Exp(fApB))
}

// sigmoidTrain is LIBSVM's Platt scaling (Lin, Lin and Weng's Newton method
// with backtracking) fitting P(y=1|f) = 1/(1+exp(A f + B)).
func sigmoidTrain(dec, labels []float64, p *Params) (float64, float64) {
	l := len(dec)
	prior1, prior0 := 0.0, 0.0
	for _, y := range labels {
		if y > 0 {
			prior1++
		} else {
			prior0++
		}
	}
	const (
		maxIter = 100
		minStep = 1e-10
		sigma   = 1e-12
		eps     = 1e-5
	)
	hi := (prior1 + 1.0) / (prior1 + 2.0)
	lo := 1 / (prior0 + 2.0)
	t := make([]float64, l)
	A, B := 0.0, math.Log((prior0+1.0)/(prior1+1.0))
	fval := 0.0
	for i := 0; i < l; i++ {
		if labels[i] > 0 {
			t[i] = hi
		} else {
			t[i] = lo
		}
		fApB := dec[i]*A + B
		if fApB >= 0 {
			fval += t[i]*fApB + math.Log(1+math.Exp(-fApB))
		} else {
			fval += (t[i]-1)*fApB + math.Log(1+math.Exp(fApB))
		}
	}
	iter := 0
	for ; iter < maxIter; iter++ {
		h11, h22, h21, g1, g2 := sigma, sigma, 0.0, 0.0, 0.0
		for i := 0; i < l; i++ {
			fApB := dec[i]*A + B
			var pp, q float64
			if fApB >= 0 {
				pp = math.Exp(-fApB) / (1.0 + math.Exp(-fApB))
				q = 1.0 / (1.0 + math.Exp(-fApB))
			} else {
				pp = 1.0 / (1.0 + math.Exp(fApB))
				q = math.Exp(fApB) / (1.0 + math.Exp(fApB))
			}
			d2 := pp * q
			h11 += dec[i] * dec[i] * d2
			h22 += d2
			h21 += dec[i] * d2
			d1 := t[i] - pp
			g1 += dec[i] * d1
			g2 += d1
		}
		if math.Abs(g1) < eps && math.Abs(g2) < eps {
			break
		}
		det := h11*h22 - h21*h21
		dA := -(h22*g1 - h21*g2) / det
		dB := -(-h21*g1 + h11*g2) / det
		gd := g1*dA + g2*dB
		step := 1.0
		for step >= minStep {
			newA, newB := A+step*dA, B+step*dB
			newf := 0.0
			for i := 0; i < l; i++ {
				fApB := dec[i]*newA + newB
				if fApB >= 0 {
					newf += t[i]*fApB + math.Log(1+math.Exp(-fApB))
				} else {
					newf += (t[i]-1)*fApB + math.Log(1+math.Exp(fApB))
				}
			}
			if newf < fval+0.0001*step*gd {
				A, B, fval = newA, newB, newf
				break
			}
			step /= 2
		}
		if step < minStep {
			p.printf("Line search fails in two-class probability estimates\n")
			break
		}
	}
	if iter >= maxIter {
		p.printf("Reaching maximal iterations in two-class probability estimates\n")
	}
	return A, B
}

// multiclassProbability is LIBSVM's pairwise coupling (Wu, Lin and Weng 2004,
// method 2): r[i][j] estimates P(class i | i or j); p receives the class
// probabilities.
func multiclassProbability(k int, r [][]float64, p []float64) {
	maxIter := max(100, k)
	Q := make([][]float64, k)
	Qp := make([]float64, k)
	eps := 0.005 / float64(k)
	for t := 0; t < k; t++ {
		p[t] = 1.0 / float64(k)
		Q[t] = make([]float64, k)
	}
	for t := 0; t < k; t++ {
		for j := 0; j < t; j++ {
			Q[t][t] += r[j][t] * r[j][t]
			Q[t][j] = Q[j][t]
		}
		for j := t + 1; j < k; j++ {
			Q[t][t] += r[j][t] * r[j][t]
			Q[t][j] = -r[j][t] * r[t][j]
		}
	}
	for iter := 0; iter < maxIter; iter++ {
		pQp := 0.0
		for t := 0; t < k; t++ {
			Qp[t] = 0
			for j := 0; j < k; j++ {
				Qp[t] += Q[t][j] * p[j]
			}
			pQp += p[t] * Qp[t]
		}
		maxErr := 0.0
		for t := 0; t < k; t++ {
			if e := math.Abs(Qp[t] - pQp); e > maxErr {
				maxErr = e
			}
		}
		if maxErr < eps {
			break
		}
		for t := 0; t < k; t++ {
			diff := (-Qp[t] + pQp) / Q[t][t]
			p[t] += diff
			pQp = (pQp + diff*(diff*Q[t][t]+2*Qp[t])) / (1 + diff) / (1 + diff)
			for j := 0; j < k; j++ {
				Qp[j] = (Qp[j] + diff*Q[t][j]) / (1 + diff)
				p[j] /= 1 + diff
			}
		}
	}
}

// binarySVCProbability estimates Platt's A, B for one binary problem from
// 5-fold cross-validated decision values (LIBSVM's svm_binary_svc_probability,
// with its rand() folds).
func binarySVCProbability(sub *Dataset, p *Params, Cp, Cn float64, rng *cRand) (float64, float64, error) {
	l := sub.Len()
	const nrFold = 5
	perm := make([]int, l)
	for i := range perm {
		perm[i] = i
	}
	for i := 0; i < l; i++ {
		j := i + rng.IntN(l-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	dec := make([]float64, l)
	for i := 0; i < nrFold; i++ {
		begin, end := i*l/nrFold, (i+1)*l/nrFold
		sp := &Dataset{MaxIndex: sub.MaxIndex}
		for j := 0; j < l; j++ {
			if j >= begin && j < end {
				continue
			}
			sp.X = append(sp.X, sub.X[perm[j]])
			sp.Y = append(sp.Y, sub.Y[perm[j]])
		}
		pc, nc := 0, 0
		for _, y := range sp.Y {
			if y > 0 {
				pc++
			} else {
				nc++
			}
		}
		switch {
		case pc == 0 && nc == 0:
			for j := begin; j < end; j++ {
				dec[perm[j]] = 0
			}
		case pc > 0 && nc == 0:
			for j := begin; j < end; j++ {
				dec[perm[j]] = 1
			}
		case pc == 0 && nc > 0:
			for j := begin; j < end; j++ {
				dec[perm[j]] = -1
			}
		default:
			sp2 := *p
			sp2.Probability = false
			sp2.C = 1
			sp2.Weights = map[int]float64{1: Cp, -1: Cn}
			m, err := train(sp, &sp2, rng)
			if err != nil {
				return 0, 0, err
			}
			for j := begin; j < end; j++ {
				_, dv := m.DecisionValues(sub.X[perm[j]], nil)
				dec[perm[j]] = dv[0] * float64(m.Label[0])
			}
		}
	}
	A, B := sigmoidTrain(dec, sub.Y, p)
	return A, B, nil
}

// svrProbability is LIBSVM's svm_svr_probability: the scale sigma of a
// Laplace distribution fitted to 5-fold cross-validation residuals (those
// beyond 5 standard deviations left out).
func svrProbability(d *Dataset, p *Params, rng *cRand) (float64, error) {
	np := *p
	np.Probability = false
	ymv, err := crossValidation(d, &np, 5, rng)
	if err != nil {
		return 0, err
	}
	l := d.Len()
	mae := 0.0
	for i := range ymv {
		ymv[i] = d.Y[i] - ymv[i]
		mae += math.Abs(ymv[i])
	}
	mae /= float64(l)
	std := math.Sqrt(2 * mae * mae)
	count := 0
	mae = 0
	for i := range ymv {
		if math.Abs(ymv[i]) > 5*std {
			count++
		} else {
			mae += math.Abs(ymv[i])
		}
	}
	mae /= float64(l - count)
	p.printf("Prob. model for test data: target value = predicted value + z,\nz: Laplace distribution e^(-|z|/sigma)/(2sigma),sigma= %s\n", cfmtG(mae, 6))
	return mae, nil
}

// CrossValidation runs LIBSVM's nFold-fold cross-validation (stratified for
// classification) and returns the prediction of every row by the model
// trained without that row's fold. The folds come from the C rand() stream
// of p.Seed, so with the default seed they are those of LIBSVM's svm-train
// -v. More folds than rows means leave-one-out.
func CrossValidation(d *Dataset, p *Params, nFold int) ([]float64, error) {
	if p == nil {
		if d == nil {
			return nil, fmt.Errorf("svm: empty data set")
		}
		p = DefaultParams(d.MaxIndex)
	}
	return crossValidation(d, p, nFold, newCRand(uint32(p.Seed)))
}

func crossValidation(d *Dataset, p *Params, nFold int, rng *cRand) ([]float64, error) {
	if nFold < 2 {
		return nil, fmt.Errorf("svm: n-fold cross validation: n must be >= 2")
	}
	if d == nil || d.Len() == 0 {
		return nil, fmt.Errorf("svm: empty data set")
	}
	if err := p.validate(d); err != nil {
		return nil, err
	}
	l := d.Len()
	if nFold > l {
		nFold = l
		p.warnf("WARNING: # folds > # data. Will use # folds = # data instead (i.e., leave-one-out cross validation)\n")
	}
	perm := make([]int, l)
	foldStart := make([]int, nFold+1)
	if p.Type.Classification() && nFold < l {
		g := groupClasses(d.Y)
		index := append([]int(nil), g.perm...)
		for c := range g.label {
			for i := 0; i < g.count[c]; i++ {
				j := i + rng.IntN(g.count[c]-i)
				index[g.start[c]+j], index[g.start[c]+i] = index[g.start[c]+i], index[g.start[c]+j]
			}
		}
		foldCount := make([]int, nFold)
		for i := 0; i < nFold; i++ {
			for c := range g.label {
				foldCount[i] += (i+1)*g.count[c]/nFold - i*g.count[c]/nFold
			}
		}
		for i := 1; i <= nFold; i++ {
			foldStart[i] = foldStart[i-1] + foldCount[i-1]
		}
		pos := append([]int(nil), foldStart...)
		for c := range g.label {
			for i := 0; i < nFold; i++ {
				begin := g.start[c] + i*g.count[c]/nFold
				end := g.start[c] + (i+1)*g.count[c]/nFold
				for j := begin; j < end; j++ {
					perm[pos[i]] = index[j]
					pos[i]++
				}
			}
		}
	} else {
		for i := range perm {
			perm[i] = i
		}
		for i := 0; i < l; i++ {
			j := i + rng.IntN(l-i)
			perm[i], perm[j] = perm[j], perm[i]
		}
		for i := 0; i <= nFold; i++ {
			foldStart[i] = i * l / nFold
		}
	}
	target := make([]float64, l)
	for i := 0; i < nFold; i++ {
		begin, end := foldStart[i], foldStart[i+1]
		sp := &Dataset{MaxIndex: d.MaxIndex}
		for j := 0; j < l; j++ {
			if j >= begin && j < end {
				continue
			}
			sp.X = append(sp.X, d.X[perm[j]])
			sp.Y = append(sp.Y, d.Y[perm[j]])
		}
		m, err := train(sp, p, rng)
		if err != nil {
			return nil, err
		}
		for j := begin; j < end; j++ {
			if p.Probability && p.Type.Classification() {
				target[perm[j]], _ = m.PredictProbability(d.X[perm[j]])
			} else {
				target[perm[j]] = m.Predict(d.X[perm[j]])
			}
		}
	}
	return target, nil
}

// Accuracy returns the percentage of predictions equal to the labels y.
func Accuracy(pred, y []float64) float64 {
	correct := 0
	for i := range pred {
		if pred[i] == y[i] {
			correct++
		}
	}
	return 100 * float64(correct) / float64(len(pred))
}

// RegressionMetrics returns the mean squared error of pred against y and
// the squared correlation coefficient, computed as LIBSVM's svm-train -v and
// svm-predict do.
func RegressionMetrics(pred, y []float64) (mse, scc float64) {
	var sumv, sumy, sumvv, sumyy, sumvy, errSum float64
	for i := range pred {
		v, t := pred[i], y[i]
		errSum += (v - t) * (v - t)
		sumv += v
		sumy += t
		sumvv += v * v
		sumyy += t * t
		sumvy += v * t
	}
	n := float64(len(pred))
	mse = errSum / n
	scc = ((n*sumvy - sumv*sumy) * (n*sumvy - sumv*sumy)) / ((n*sumvv - sumv*sumv) * (n*sumyy - sumy*sumy))
	return mse, scc
}
