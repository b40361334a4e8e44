// Package svm is a pure-Go solver for smooth problems under a summation
// constraint (and optional bounds) using greedy 2-coordinate and 1-norm
// steepest-descent rules, and a LIBSVM-compatible C-SVC built on it.
//
// The general solver (Solve) minimises f(x) subject to sum(x) = Gamma and
// Lower <= x <= Upper with one of the working-set rules of Ramesh et al.
// (2023): GS-1 (steepest descent in the 1-norm), GS-s (maximal violating
// pair), GS-q, LIBSVM's second-order WSS2 and uniformly random pairs, using
// either the fixed 1/L step or exact steps for quadratics.
//
// The SVM part (Train, Model, ReadDataset, ReadModel) reproduces LIBSVM 3.24's
// C-SVC: kernels, the float32 LRU kernel-column cache, shrinking with gradient
// reconstruction, rho, one-vs-one multi-class, class weights, Platt
// probabilities and cross-validation, and reads and writes LIBSVM's data and
// model files.
//
// Commands: cmd/svm-train and cmd/svm-predict take LIBSVM's flags (plus
// -rule and -threads) and print LIBSVM's summary lines; models are
// interchangeable with LIBSVM's own tools. scripts/svm-compare.sh runs both
// side by side. RunComparison prints the rule comparison table and writes
// the f(x) - f* plots.
//
// The SVM dual min 1/2 a'Qa - e'a, y'a = 0, 0 <= a <= C with Q_ij = y_i y_j K_ij
// maps to the general form with x_i = y_i a_i: f(x) = 1/2 x'Kx - y'x, sum(x) = 0,
// x_i in [min(0, y_i C), max(0, y_i C)], and LIBSVM's maximal violation gap
// m(a) - M(a) equals max over decreasable x_i of g_i minus min over increasable
// x_j of g_j, with g = Kx - y.
package svm
