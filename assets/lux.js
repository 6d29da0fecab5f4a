/* LUX Analytics snippet: first-party page views, events and identity. No dependencies.
   <script defer src="https://YOUR-LUX-HOST/lux.js" data-key="WRITE_KEY"></script> */
(function (w, d, n) {
  var s = d.currentScript, key = s && s.getAttribute('data-key');
  if (!key || w.lux) return;
  var api = (s.getAttribute('data-api') || new URL(s.src).origin) + '/e?key=' + encodeURIComponent(key);
  var ls = w.localStorage, VK = 'lux_vid', QK = 'lux_q', CK = 'lux_consent';
  var gpc = n.globalPrivacyControl === true;
  function get(k) { try { return ls.getItem(k); } catch (e) { return null; } }
  function put(k, v) { try { v == null ? ls.removeItem(k) : ls.setItem(k, v); } catch (e) {} }
  // UUIDv7, monotonic within the page (RFC 9562 §6.2, method 1): the time (ms) leads, so the
  // server's idempotency index grows at its right edge; a 12-bit counter follows, seeded at
  // random each new millisecond and counted up within one (or after the clock stepped back),
  // so ids made in one tick sort in the order they were made. The server orders equal times
  // by event id, so this is what keeps identify, add_to_cart and purchase of one tick in order.
  var lt = 0, sq = 0;
  function uuid() {
    var c = w.crypto, b = c && c.getRandomValues ? c.getRandomValues(new Uint8Array(16)) : [], t = Date.now(), h = '', i;
    for (i = 0; i < 16; i++) if (b[i] == null) b[i] = Math.random() * 256 | 0;
    if (t > lt) { lt = t; sq = (b[6] & 7) << 8 | b[7]; } else if (++sq > 4095) { lt++; sq = 0; }
    for (t = lt, i = 5; i >= 0; i--) { b[i] = t % 256; t = Math.floor(t / 256); }
    b[6] = 112 | sq >> 8; b[7] = sq & 255; b[8] = b[8] & 63 | 128;
    for (i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1) + (i == 3 || i == 5 || i == 7 || i == 9 ? '-' : '');
    return h;
  }
  var consent = JSON.parse(get(CK) || 'null');
  // GPC or no analytics consent: nothing persistent, no visitor id, no identity.
  function anon() { return gpc || !!(consent && consent.analytics === false); }
  function cookie(v) { d.cookie = VK + '=' + (v || '') + ';path=/;max-age=' + (v ? 34560000 : 0) + ';samesite=lax'; }
  var vid = null;
  function visitor() {
    if (anon()) return null;
    if (!vid) {
      var m = d.cookie.match(/(?:^|; )lux_vid=([^;]+)/);
      vid = get(VK) || (m && m[1]) || uuid();
      put(VK, vid); cookie(vid);
    }
    return vid;
  }
  // lux_mid: the email/SMS message whose link brought the visitor, kept for the tab.
  var mid = new URLSearchParams(location.search).get('lux_mid');
  try { mid ? sessionStorage.setItem('lux_mid', mid) : mid = sessionStorage.getItem('lux_mid'); } catch (e) {}
  // The ad creative that brought the visitor, when the site knows it (lux.creative(id)). Not
  // kept across pages: the server keeps a session's first creative_id as the session's.
  var cid;
  var queue = anon() ? [] : JSON.parse(get(QK) || '[]'), busy = 0, delay = 1000;
  function save() { if (!anon()) put(QK, queue.length ? JSON.stringify(queue.slice(-200)) : null); }
  function retry() { setTimeout(flush, delay); delay = Math.min(delay * 2, 60000); }
  function flush(beacon) {
    if (busy || !queue.length) return;
    var batch = queue.slice(0, 50), body = JSON.stringify(batch);
    while (batch.length > 1 && body.length > 60000) { batch = batch.slice(0, batch.length >> 1); body = JSON.stringify(batch); }
    if (beacon === true && n.sendBeacon && n.sendBeacon(api, new Blob([body], { type: 'text/plain' }))) {
      queue.splice(0, batch.length); save(); return;
    }
    busy = 1;
    fetch(api, { method: 'POST', body: body, keepalive: body.length < 60000, credentials: 'omit',
                 headers: { 'Content-Type': 'text/plain' } })
      .then(function (r) {
        busy = 0;
        // 503/429: the server asks us to back off and retry. Other answers are final.
        if (r.status == 503 || r.status == 429) return retry();
        queue.splice(0, batch.length); save(); delay = 1000; flush();
      }, function () { busy = 0; retry(); });
  }
  var last = d.referrer || null;
  function send(name, props, extra) {
    var e = { event_id: uuid(), event_name: name, occurred_at: new Date().toISOString(),
              page_url: location.href, referrer: last, properties: props || {} };
    var v = visitor(), k;
    if (v) e.visitor_id = v;
    if (gpc) e.gpc = true;
    if (consent) e.consent = consent;
    if (mid) e.properties.lux_mid = mid;
    if (cid) e.creative_id = cid;
    for (k in extra || {}) e[k] = extra[k];
    queue.push(e); save(); flush();
  }
  var page = null;
  function pageview() {
    if (location.href == page) return;
    if (page) last = page;
    page = location.href; send('page_view');
  }
  ['pushState', 'replaceState'].forEach(function (f) {
    var orig = history[f];
    history[f] = function () { var r = orig.apply(this, arguments); pageview(); return r; };
  });
  w.addEventListener('popstate', pageview);
  w.addEventListener('online', flush);
  // Engaged time: visible time on the page, reported when it is hidden.
  var shown = Date.now(), engaged = 0;
  d.addEventListener('visibilitychange', function () {
    if (d.visibilityState == 'visible') { shown = Date.now(); return; }
    engaged += Date.now() - shown;
    if (engaged > 1000) { send('engagement', { engaged_ms: engaged }); engaged = 0; }
    flush(true);
  });
  w.addEventListener('pagehide', function () { flush(true); });
  w.lux = {
    track: function (name, props) { send(name, props); },
    // A/B tests: the visitor sees `variant` of experiment `key` (the first exposure counts).
    expose: function (k, v) { send('experiment_exposure', { experiment: k, variant: v }); },
    identify: function (userId, traits) {
      if (anon()) return;
      send('identify', {}, { user_id: userId, email: traits && traits.email });
    },
    consent: function (c) {
      // The choice reaches the consent ledger under the id it may withdraw; then the id goes.
      var v = anon() ? null : visitor();
      consent = c; put(CK, JSON.stringify(c));
      send('consent', {}, v ? { visitor_id: v } : {});
      if (anon()) { vid = null; put(VK, null); put(QK, null); cookie(null); }
    },
    page: pageview,
    creative: function (id) { cid = id; },
    // For Stripe Checkout's client_reference_id or a hidden checkout field: null without consent.
    visitorId: visitor
  };
  pageview();
})(window, document, navigator);
