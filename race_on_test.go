//go:build race

package main

// raceBuild is the [race] condition: these tests run under the race
// detector, where image-heavy scenarios take many times longer.
const raceBuild = true
