int i = blockIdx.x * blockDim.x + threadIdx.x;
if (i >= {{n}}) return;
int oc = (i / {{ohw}}) % {{oc}};
(void)oc;
float v = p0[i];
{{epilogue}}p0[i] = v;
