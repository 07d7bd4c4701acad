package etcd

// SetToken replaces the client's auth token, as an expired one would be.
func SetToken(c *Client, token string) {
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
}
