float m = -(1.0f/0.0f);
for (int iy = y0; iy < y1; iy++) for (int ix = x0; ix < x1; ix++) m = fmaxf(m, xp[iy * W + ix]);
p0[i] = m;
