package etcd

import "context"

const methodAuthenticate = "/etcdserverpb.Auth/Authenticate"

// authenticate trades the user and password for a token, which every later call sends
// in its token header. A call that etcd answers "invalid auth token" (the token expired,
// or the member restarted) authenticates again, once, and is retried.
func (c *Client) authenticate(ctx context.Context) error {
	var token string
	c.mu.Lock()
	c.token = "" // Authenticate itself goes without
	c.mu.Unlock()
	err := c.call(ctx, Call{Method: methodAuthenticate}, retryAll, appendAuthenticate(nil, c.cfg.User, c.cfg.Password),
		func(b []byte) (err error) { token, err = decodeAuthenticate(b); return err })
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	return nil
}
