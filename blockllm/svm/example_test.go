package svm_test

import (
	"fmt"
	"log"

	"github.com/blockllm/blockllm-go/blockllm/svm"
)

// Train a C-SVC with LIBSVM's defaults and predict.
func ExampleTrain() {
	d, err := svm.ReadDatasetFile("../../testdata/svm/heart_scale")
	if err != nil {
		log.Fatal(err)
	}
	m, err := svm.Train(d, svm.DefaultParams(d.MaxIndex))
	if err != nil {
		log.Fatal(err)
	}
	st := m.Stats[0]
	fmt.Printf("#iter = %d, obj = %f, rho = %f, nSV = %d\n", st.Iterations, st.Obj, st.Rho, m.TotalSV())
	fmt.Println("first row:", m.Predict(d.X[0]))
	// Output:
	// #iter = 162, obj = -100.877288, rho = 0.424462, nSV = 132
	// first row: 1
}

// Minimise a quadratic on the simplex-like set {sum(x) = 1, 0 <= x <= 0.6}
// with the GS-1 rule and exact steps.
func ExampleSolve() {
	q := &svm.DenseQuadratic{N: 3, Data: []float64{
		2, 0, 0,
		0, 1, 0,
		0, 0, 4,
	}}
	p := svm.Problem{Quad: q, Linear: []float64{-1, 0, 1}, Lower: []float64{0, 0, 0}, Upper: []float64{0.6, 0.6, 0.6}, Gamma: 1}
	res, err := svm.Solve(p, &svm.Settings{Rule: svm.GS1, Step: svm.ExactStep, Tol: 1e-12})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v x = [%.4f %.4f %.4f] f = %.4f\n", res.Status, res.X[0], res.X[1], res.X[2], res.F)
	// Output:
	// Converged x = [0.6000 0.4000 0.0000] f = -0.1600
}
