<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of a JSON http adapter's address-book export: one
     contact as a contact of a service shaped like Microsoft Graph
     (docs/operations.md, "Address books from a JSON REST service").

     Input:  <entry xmlns="urn:xdmsd:xml:iwf-book"> with @id and @etag when
             the contact exists at the 3rd party, holding it as an xCard
             <vcard> (RFC 6351, as pcc2xcard.xsl writes it).
     Output: the contact in the XML representation of JSON, which xdmsd
             sends as the JSON body of POST me/contacts or PATCH
             me/contacts/{id} (If-Match: the @odata.etag, with the adapter's
             book-if-match). Every field Graph knows is written, emptied
             ones included, so that an update leaves nothing stale. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:b="urn:xdmsd:xml:iwf-book"
                xmlns:v="urn:ietf:params:xml:ns:vcard-4.0"
                xmlns="http://www.w3.org/2005/xpath-functions"
                exclude-result-prefixes="b v">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:template match="/">
    <xsl:if test="not(b:entry/v:vcard)">
      <xsl:message terminate="yes">no xCard vcard to export</xsl:message>
    </xsl:if>
    <xsl:apply-templates select="b:entry/v:vcard"/>
  </xsl:template>

  <xsl:template name="value">
    <xsl:variable name="u" select="normalize-space(v:uri | v:text)"/>
    <xsl:choose>
      <xsl:when test="starts-with($u, 'tel:')"><xsl:value-of select="substring($u, 5)"/></xsl:when>
      <xsl:when test="starts-with($u, 'mailto:')"><xsl:value-of select="substring($u, 8)"/></xsl:when>
      <xsl:otherwise><xsl:value-of select="$u"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="string-or-null">
    <xsl:param name="key"/>
    <xsl:param name="value"/>
    <xsl:choose>
      <xsl:when test="string($value) != ''"><string key="{$key}"><xsl:value-of select="$value"/></string></xsl:when>
      <xsl:otherwise><null key="{$key}"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="address">
    <xsl:param name="key"/>
    <xsl:param name="adr"/>
    <map key="{$key}">
      <xsl:if test="$adr">
        <string key="street"><xsl:value-of select="normalize-space($adr/v:street)"/></string>
        <string key="city"><xsl:value-of select="normalize-space($adr/v:locality)"/></string>
        <string key="state"><xsl:value-of select="normalize-space($adr/v:region)"/></string>
        <string key="postalCode"><xsl:value-of select="normalize-space($adr/v:code)"/></string>
        <string key="countryOrRegion"><xsl:value-of select="normalize-space($adr/v:country)"/></string>
      </xsl:if>
    </map>
  </xsl:template>

  <xsl:template match="v:vcard">
    <xsl:variable name="tels" select="v:tel"/>
    <xsl:variable name="mobile" select="$tels[v:parameters/v:type/v:text = 'cell'][1]"/>
    <xsl:variable name="home-adr" select="v:adr[v:parameters/v:type/v:text = 'home'][1]"/>
    <map>
      <xsl:call-template name="string-or-null"><xsl:with-param name="key" select="'displayName'"/><xsl:with-param name="value" select="v:fn[1]/v:text"/></xsl:call-template>
      <xsl:call-template name="string-or-null"><xsl:with-param name="key" select="'givenName'"/><xsl:with-param name="value" select="v:n[1]/v:given[1]"/></xsl:call-template>
      <xsl:call-template name="string-or-null"><xsl:with-param name="key" select="'middleName'"/><xsl:with-param name="value" select="v:n[1]/v:additional[1]"/></xsl:call-template>
      <xsl:call-template name="string-or-null"><xsl:with-param name="key" select="'surname'"/><xsl:with-param name="value" select="v:n[1]/v:surname[1]"/></xsl:call-template>
      <array key="emailAddresses">
        <xsl:for-each select="v:email">
          <map>
            <string key="address"><xsl:call-template name="value"/></string>
            <string key="name"><xsl:value-of select="../v:fn[1]/v:text"/></string>
          </map>
        </xsl:for-each>
      </array>
      <xsl:choose>
        <xsl:when test="$mobile"><string key="mobilePhone"><xsl:for-each select="$mobile"><xsl:call-template name="value"/></xsl:for-each></string></xsl:when>
        <xsl:otherwise><null key="mobilePhone"/></xsl:otherwise>
      </xsl:choose>
      <array key="businessPhones">
        <xsl:for-each select="$tels[v:parameters/v:type/v:text = 'work']"><string><xsl:call-template name="value"/></string></xsl:for-each>
      </array>
      <!-- home, and every other number but the mobile -->
      <array key="homePhones">
        <xsl:for-each select="$tels[not(v:parameters/v:type/v:text = 'work')][generate-id() != generate-id($mobile)]">
          <string><xsl:call-template name="value"/></string>
        </xsl:for-each>
      </array>
      <xsl:call-template name="address"><xsl:with-param name="key" select="'homeAddress'"/><xsl:with-param name="adr" select="$home-adr"/></xsl:call-template>
      <xsl:call-template name="address"><xsl:with-param name="key" select="'businessAddress'"/><xsl:with-param name="adr" select="v:adr[generate-id() != generate-id($home-adr)][1]"/></xsl:call-template>
      <xsl:call-template name="string-or-null"><xsl:with-param name="key" select="'companyName'"/><xsl:with-param name="value" select="v:org[1]/v:text[1]"/></xsl:call-template>
      <xsl:call-template name="string-or-null"><xsl:with-param name="key" select="'jobTitle'"/><xsl:with-param name="value" select="v:title[1]/v:text"/></xsl:call-template>
      <xsl:variable name="d" select="translate(normalize-space(v:bday[1]/v:date), '-', '')"/>
      <xsl:choose>
        <xsl:when test="string-length($d) = 8">
          <string key="birthday"><xsl:value-of select="concat(substring($d, 1, 4), '-', substring($d, 5, 2), '-', substring($d, 7, 2), 'T00:00:00Z')"/></string>
        </xsl:when>
        <xsl:otherwise><null key="birthday"/></xsl:otherwise>
      </xsl:choose>
    </map>
  </xsl:template>
</xsl:stylesheet>
