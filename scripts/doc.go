// Package scripts holds the project's build and check scripts (shell, and Go tools in
// sub-directories such as mkdemo). Its tests check the scripts and the repository's
// layering rules; it has no library code.
package scripts
