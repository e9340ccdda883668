float acc = 0.0f;
for (int iy = y0; iy < y1; iy++) for (int ix = x0; ix < x1; ix++) acc += xp[iy * W + ix];
p0[i] = acc / (float)(count > 0 ? count : 1);
