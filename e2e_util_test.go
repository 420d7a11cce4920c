package main

import (
	"fmt"
	"net/url"
)

type urlURL = url.URL

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }
