int ys = oy * {{sh}} - {{pt}}, xs = ox * {{sw}} - {{pl}};
int y1 = min(ys + {{kh}}, {{h}}), x1 = min(xs + {{kw}}, {{w}});
int y0 = max(ys, 0), x0 = max(xs, 0);
if (y1 < y0) y1 = y0; if (x1 < x0) x1 = x0;
int count = {{count}};
