// Package svm is a pure-Go port of LIBSVM 3.24 (every problem type and
// kernel, its solver, model files, cross-validation and probabilities) whose
// solver also takes the working-set rules of the greedy 2-coordinate paper
// (Ramesh et al. 2023), and a general solver for smooth problems under a
// summation constraint.
//
// Train, CrossValidation, Model, ReadDataset and ReadModel reproduce LIBSVM:
// C-SVC, nu-SVC, one-class SVM, epsilon-SVR and nu-SVR; linear, polynomial,
// RBF, sigmoid and precomputed kernels; the float32 LRU kernel-column cache,
// Solver and Solver_NU (WSS2 with LIBSVM's tie-breaking, shrinking with
// gradient reconstruction), rho, one-vs-one multi-class, class weights,
// Platt probabilities, the Laplace sigma of regression, and cross-validation
// with LIBSVM's own folds (a glibc-compatible rand()). With LIBSVM's flags
// the figures and model files are LIBSVM's (byte for byte but for the last
// digit of values that go through the C library's exp, log or tanh).
//
// Params.Rule selects the working set inside the same solver, for every
// problem type and with the same shrinking, gradient reconstruction, cache
// and threads: WSS2 (LIBSVM's, the default), GSS (maximal violating pair),
// GSQ, Random pairs, or GS1, the steepest descent in the 1-norm under the
// bounds, which may move several coordinates (each to its bound, plus at
// most one interior coordinate per side and constraint) and is found in
// O(n log n). Params.FixedStep takes the paper's fixed 1/L step instead of
// the exact one. RunComparison runs them all and returns iterations, kernel
// evaluations, times and objective traces (cmd/bench's `bench svm` prints
// and plots them).
//
// The general solver (Solve) minimises f(x) subject to sum(x) = Gamma and
// Lower <= x <= Upper with the same rules, for any smooth f given by its
// gradient or a Quadratic.
//
// Commands: cmd/svm-train, cmd/svm-predict and cmd/svm-scale take LIBSVM's
// flags and print LIBSVM's lines (svm-train adds -rule, -step and -threads);
// models are interchangeable with LIBSVM's own tools. scripts/svm-compare.sh
// runs both side by side.
//
// The SVM dual in LIBSVM's variables, min 1/2 a'Qa + p'a with y'a fixed
// and 0 <= a <= C, maps to the general form with x_i = y_i a_i: g = y*G,
// sum(x) fixed (per class for nu-SVM), x_i in [min(0, y_i C), max(0, y_i C)],
// and LIBSVM's maximal violation m(a) - M(a) equals max over decreasable x_i
// of g_i minus min over increasable x_j of g_j.
package svm
