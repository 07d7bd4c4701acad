package testenv

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// HTTPGet GETs url with c and returns the status code and the body. Any status is an
// answer, not an error: the caller checks the code. On an error reading the body, the
// code and what was read come with the error.
func HTTPGet(c *http.Client, url string) (code int, body string, err error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// HTTPBody is the body of a GET of url with a client that gives up after timeout, whatever
// the status, or "" when the GET fails: for polls that wait until something answers, and
// for failure messages that show the last answer.
func HTTPBody(url string, timeout time.Duration) string {
	_, body, _ := HTTPGet(&http.Client{Timeout: timeout}, url)
	return body
}

// MustHTTPBody is HTTPBody failing the test when the GET fails, for a server that must be
// answering already.
func MustHTTPBody(t testing.TB, url string, timeout time.Duration) string {
	t.Helper()
	_, body, err := HTTPGet(&http.Client{Timeout: timeout}, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return body
}
