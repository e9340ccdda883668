int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
int ox = i % {{ow}}; int t = i / {{ow}}; int oy = t % {{oh}}; int plane = t / {{oh}};
const float* x = p1 + (long long)plane * {{ihw}};
int y0 = p2[2 * oy], y1 = p2[2 * oy + 1], x0 = p4[2 * ox], x1 = p4[2 * ox + 1];
float wy0 = p3[2 * oy], wy1 = p3[2 * oy + 1], wx0 = p5[2 * ox], wx1 = p5[2 * ox + 1];
p0[i] = wy0 * (wx0 * x[y0 * {{iw}} + x0] + wx1 * x[y0 * {{iw}} + x1])
      + wy1 * (wx0 * x[y1 * {{iw}} + x0] + wx1 * x[y1 * {{iw}} + x1]);
