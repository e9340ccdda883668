int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{rows}}) return;
size_t base = (long long)(i / {{inner}}) * {{len}} * {{inner}} + (i % {{inner}});
const float* x = p1 + base; float* y = p0 + base;
float m = -(1.0f/0.0f);
for (int j = 0; j < {{len}}; j++) m = fmaxf(m, x[j * {{inner}}]);
float s = 0.0f;
for (int j = 0; j < {{len}}; j++) { float e = expf(x[j * {{inner}}] - m); y[j * {{inner}}] = e; s += e; }
float inv = 1.0f / s;
for (int j = 0; j < {{len}}; j++) y[j * {{inner}}] *= inv;
