int y0 = (oy * {{h}}) / {{oh}}, y1 = ((oy + 1) * {{h}} + {{oh}} - 1) / {{oh}};
int x0 = (ox * {{w}}) / {{ow}}, x1 = ((ox + 1) * {{w}} + {{ow}} - 1) / {{ow}};
int count = (y1 - y0) * (x1 - x0);
